/**
 * Automatic import by listing (spec/fsx-dra.md §11; change source 1, which works with every S3
 * server): every `intervalMs`, each AVAILABLE DRA with an import policy compares its S3 prefix with
 * its directory, one directory at a time (a listing with Delimiter '/'), so memory is bounded by the
 * largest directory, not the tree:
 *   NEW      an object or prefix with no entry here → the entry is created (released; a file
 *            listed-only: its metadata is read at its first lookup)
 *   CHANGED  a file whose object's ETag differs from the one it was imported with → metadata
 *            updated, content released (a file with local changes not exported is kept)
 *   DELETED  an entry that came from S3 whose object is gone → removed (directories only when
 *            empty; entries made here and never exported are not S3's to delete)
 * Our own exports come back with the ETag the entry already records, so they are no change.
 */
import type { S3Client } from '@aws-sdk/client-s3'
import type { Logger } from '../daemon/logger'
import type { Associations } from '../dra/associations'
import { type DraRecord, importEvents } from '../dra/association'
import { parseRepositoryPath } from '../dra/paths'
import type { FileSystem } from '../fs/filesystem'
import { type ImportItem, type ImportPolicy, importEntries } from '../fs/import-entries'
import { isDir, isReg, S_IFDIR, S_IFMT } from '../namespace/inode'
import { keyToPath } from '../repo/key-mapping'
import { describeS3Error, listDirectory, type ListedObject } from '../repo/objects'
import { headedItem, listedItem } from './object-items'
import type { S3Clients } from '../repo/s3-clients'
import { mapLimit } from '../util/pool'
import type { Metrics } from '../util/metrics'

const HEAD_CONCURRENCY = 16
const RECENT_MS = 3000

export interface AutoImportOptions {
  /** A local change of the path waits to be exported: it wins over what S3 holds. */
  exportPending?: (path: string) => Promise<boolean>
  /** Called after a pass that created entries: new files are listed-only until settled (src/sync/listed-settler.ts). */
  onImported?: () => void
  metrics?: Metrics
  associations: Associations
  filesystem: FileSystem
  clients: S3Clients
  log: Logger
  intervalMs: number
}

interface Walk { dra: DraRecord, client: S3Client, bucket: string, draPrefix: string, rootIno: number, policy: ImportPolicy & { remove: boolean }, counts: Record<string, number> }

export class AutoImporter {
  private timer?: NodeJS.Timeout
  private running?: Promise<void>
  private stopped = false
  /** Aborts the S3 calls of a pass in flight when the daemon stops. */
  private readonly abort = new AbortController()

  constructor (private readonly o: AutoImportOptions) {}

  start (): void {
    const tick = (): void => {
      this.running = this.pollAll().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, this.o.intervalMs)
      })
    }
    this.timer = setTimeout(tick, this.o.intervalMs)
  }

  async stop (): Promise<void> {
    this.stopped = true
    this.abort.abort()
    clearTimeout(this.timer)
    await this.running
  }

  /** One pass over every DRA with an import policy; a DRA's failure is logged and does not stop the others. */
  async pollAll (): Promise<void> {
    for (const dra of this.o.associations.list()) {
      if (this.stopped) return
      const events = importEvents(dra)
      if (dra.Lifecycle !== 'AVAILABLE' || events.length === 0) continue
      try {
        await this.pollDra(dra, events)
      } catch (err) {
        this.o.log.warn('automatic import pass failed; next pass retries', { associationId: dra.AssociationId, error: describeS3Error(err) })
      }
    }
  }

  private async pollDra (dra: DraRecord, events: string[]): Promise<void> {
    const repo = parseRepositoryPath(dra.DataRepositoryPath)
    const root = await this.o.filesystem.resolve(dra.FileSystemPath)
    const { client } = await this.o.clients.forBucket(repo.bucket)
    const walk: Walk = {
      dra, client, bucket: repo.bucket, draPrefix: repo.prefix, rootIno: root.ino,
      policy: { create: events.includes('NEW'), update: events.includes('CHANGED'), remove: events.includes('DELETED') },
      counts: {}
    }
    await this.walk(walk, repo.prefix, [])
    for (const [result, n] of Object.entries(walk.counts)) {
      this.o.metrics?.importEvents.inc({ source: 'listing', result }, n)
      if (result === 'created' || result === 'updated') this.o.metrics?.objectsImported.inc({ via: 'automatic' }, n)
    }
    if (Object.keys(walk.counts).length > 0) this.o.log.info('automatic import applied changes', { associationId: dra.AssociationId, ...walk.counts })
    if ((walk.counts.created ?? 0) > 0) this.o.onImported?.()
  }

  private async walk (w: Walk, prefix: string, components: string[]): Promise<void> {
    if (this.stopped) return
    const localPath = [w.dra.FileSystemPath.replace(/\/+$/, ''), ...components].join('/') || '/'
    const local = new Map((await this.o.filesystem.readdir(localPath).catch(() => [])).map((e) => [e.name, e]))
    const { objects, prefixes } = await listDirectory(w.client, w.bucket, prefix, this.abort.signal)
    const seen = new Set<string>()
    const changed: ListedObject[] = []
    // New files come in from the listing, as a batch import's do (src/sync/batch-import.ts): their
    // metadata is read when they are first looked up. Changed ones need theirs now, to compare.
    const fresh: ImportItem[] = []
    for (const obj of objects) {
      const name = obj.key.slice(prefix.length)
      if (name === '') continue // this directory's own marker
      const path = keyToPath(w.draPrefix, obj.key)
      if ('problem' in path) continue
      seen.add(name)
      const entry = local.get(name)
      if (await this.pending(localPath, name)) continue
      if (entry === undefined && w.policy.create && !path.directory) {
        fresh.push(listedItem({ dra: w.dra.AssociationId, bucket: w.bucket, components: path.components }, obj))
      } else if (entry === undefined ? w.policy.create : w.policy.update && await this.differs(localPath, name, obj)) changed.push(obj)
    }
    const headed = await mapLimit(changed, HEAD_CONCURRENCY, async (obj) => await this.itemFor(w, obj))
    const items = [...fresh, ...headed.filter((i): i is ImportItem => i !== undefined)]
    const subdirs: string[] = []
    for (const p of prefixes) {
      const name = p.slice(prefix.length, -1)
      if (name === '' || 'problem' in keyToPath(w.draPrefix, p)) continue
      seen.add(name)
      subdirs.push(name)
      if (!local.has(name) && w.policy.create && !await this.pending(localPath, name)) {
        items.push({ components: [...components, name], type: 'directory', meta: {}, remote: { dra: w.dra.AssociationId, bucket: w.bucket, key: p, etag: '', size: 0, modified: 0 } })
      }
    }
    if (items.length > 0) {
      const outcomes = await importEntries(this.o.filesystem.ns, this.o.filesystem.content, w.rootIno, items, w.policy)
      for (const o of outcomes) count(w, typeof o === 'string' ? o : o.error)
    }
    if (w.policy.remove) {
      for (const [name, entry] of local) {
        if (seen.has(name) || await this.pending(localPath, name)) continue
        // A directory gone from S3: its imported contents go first (the listing below it is empty).
        if ((entry.type & S_IFMT) === S_IFDIR) await this.walk(w, `${prefix}${name}/`, [...components, name])
        count(w, await this.o.filesystem.removeImported(`${localPath === '/' ? '' : localPath}/${name}`, undefined) === 'removed' ? 'removed' : 'kept')
      }
    }
    for (const name of subdirs) {
      const kind = await this.o.filesystem.resolve(`${localPath === '/' ? '' : localPath}/${name}`).catch(() => undefined)
      if (kind !== undefined && isDir(kind)) await this.walk(w, `${prefix}${name}/`, [...components, name])
    }
  }

  private async pending (dir: string, name: string): Promise<boolean> {
    return await this.o.exportPending?.(`${dir === '/' ? '' : dir}/${name}`) === true
  }

  /**
   * An entry here whose object is not the one it records: another ETag (new content), or a later
   * LastModified (a metadata-only change: a copy with new metadata keeps the ETag). Compared in
   * whole seconds, the precision of HEAD's Last-Modified.
   */
  private async differs (localPath: string, name: string, obj: ListedObject): Promise<boolean> {
    const inode = await this.o.filesystem.resolve(`${localPath === '/' ? '' : localPath}/${name}`).catch(() => undefined)
    if (inode === undefined || isDir(inode)) return false
    const remote = inode.remote
    if (remote === undefined) return isReg(inode)
    if (remote.etag !== obj.etag || Math.floor(obj.modified / 1000) > Math.floor(remote.modified / 1000)) return true
    // Within one second a metadata-only change is invisible in a listing: objects written in the
    // last few seconds are looked at (HEAD) again, which costs nothing once they are older.
    return obj.modified > Date.now() - RECENT_MS
  }

  private async itemFor (w: Walk, obj: ListedObject): Promise<ImportItem | undefined> {
    const path = keyToPath(w.draPrefix, obj.key)
    if ('problem' in path) return undefined
    try {
      return await headedItem(w.client, { dra: w.dra.AssociationId, bucket: w.bucket, components: path.components }, obj.key, this.abort.signal)
    } catch (err) {
      // Gone between the listing and the HEAD, or unreadable: FSx skips it; the next pass sees it again.
      this.o.log.warn('automatic import skipped an object', { associationId: w.dra.AssociationId, key: obj.key, error: describeS3Error(err) })
      return undefined
    }
  }
}

function count (w: Walk, what: string): void {
  w.counts[what] = (w.counts[what] ?? 0) + 1
}
