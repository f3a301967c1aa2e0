/**
 * Applies one S3 change notification (webhook or SQS) to the DRA whose repository holds its key,
 * per that DRA's import policy (spec/fsx-dra.md §11). Notifications can arrive late, twice or out
 * of order, so the notification only says *which* key to look at: what is applied is what S3 holds
 * now (a HEAD), which makes duplicates and reordering harmless:
 *   object there, no entry here      → NEW: created (released)
 *   object there, entry differs      → CHANGED: metadata updated, content released
 *   object there, same ETag as here  → nothing (a duplicate, or the echo of our own export)
 *   object gone                      → DELETED: removed (directories only when empty; local
 *                                      changes not exported are kept)
 * A per-key sequencer older than one already seen is dropped without a HEAD.
 * Errors that may pass (network, 5xx, throttling) are thrown for the queue to retry; an object we
 * may not read (403) is skipped, as FSx does, with a log line.
 */
import type { Logger } from '../daemon/logger'
import type { Associations } from '../dra/associations'
import { type DraRecord, importEvents } from '../dra/association'
import { parseRepositoryPath } from '../dra/paths'
import type { FileSystem } from '../fs/filesystem'
import { type ImportItem, importEntries } from '../fs/import-entries'
import { isDir } from '../namespace/inode'
import { NOT_POSIX, keyToPath } from '../repo/key-mapping'
import { decodePosixMetadata, entryTypeOf } from '../repo/posix-metadata'
import { getObjectText, headObject, type ObjectHead, s3ErrorCode } from '../repo/objects'
import type { S3Clients } from '../repo/s3-clients'
import { Lru } from '../util/lru'
import { type ObjectChange, compareSequencers } from './events'

export type ApplyResult = 'applied' | 'ignored'

const SEQUENCERS_KEPT = 100_000

export class ChangeApplier {
  private readonly sequencers = new Lru<string, string>(SEQUENCERS_KEPT)

  /** `exportPending(path)`: a local change of path waits to be exported; it wins over S3's state. */
  constructor (private readonly o: { associations: Associations, filesystem: FileSystem, clients: S3Clients, log: Logger, exportPending?: (path: string) => Promise<boolean> }) {}

  /** The DRA (with an import policy) whose repository holds the key, if any. */
  draFor (bucket: string, key: string): DraRecord | undefined {
    return this.o.associations.list().find((r) => {
      const repo = parseRepositoryPath(r.DataRepositoryPath)
      return repo.bucket === bucket && key.startsWith(repo.prefix) && importEvents(r).length > 0
    })
  }

  async apply (change: ObjectChange): Promise<ApplyResult> {
    const dra = this.draFor(change.bucket, change.key)
    if (dra === undefined || dra.Lifecycle !== 'AVAILABLE') return 'ignored'
    const id = `${change.bucket}/${change.key}`
    if (change.sequencer !== undefined) {
      const last = this.sequencers.get(id)
      if (last !== undefined && compareSequencers(change.sequencer, last) <= 0) return 'ignored'
    }
    const repo = parseRepositoryPath(dra.DataRepositoryPath)
    const path = keyToPath(repo.prefix, change.key)
    if ('problem' in path) {
      this.o.log.warn('automatic import skipped a key', { event: NOT_POSIX, associationId: dra.AssociationId, key: change.key, problem: path.problem })
      return 'ignored'
    }
    const { client } = await this.o.clients.forBucket(change.bucket)
    let head: ObjectHead | undefined
    try {
      head = await headObject(client, change.bucket, change.key)
    } catch (err) {
      const code = s3ErrorCode(err)
      if (code === 'S3AccessDenied') {
        this.o.log.warn('automatic import skipped an object it may not read', { event: code, associationId: dra.AssociationId, key: change.key })
        return 'ignored'
      }
      if (code !== 'S3ObjectNotFound') throw err
    }
    const events = importEvents(dra)
    const localPath = [dra.FileSystemPath.replace(/\/+$/, ''), ...path.components].join('/') || '/'
    if (await this.o.exportPending?.(localPath) === true) return 'ignored'
    const result = head === undefined
      ? await this.removed(dra, localPath, events.includes('DELETED'))
      : await this.present(dra, path.components, path.directory, head, client, events)
    if (change.sequencer !== undefined) this.sequencers.set(id, change.sequencer)
    return result
  }

  private async removed (dra: DraRecord, localPath: string, allowed: boolean): Promise<ApplyResult> {
    if (!allowed || localPath === dra.FileSystemPath.replace(/\/+$/, '')) return 'ignored'
    const outcome = await this.o.filesystem.removeImported(localPath, undefined)
    if (outcome === 'kept') this.o.log.info('automatic import kept an entry whose object is gone', { associationId: dra.AssociationId, path: localPath, reason: 'local changes not exported, made here, or a directory that is not empty' })
    return outcome === 'removed' ? 'applied' : 'ignored'
  }

  private async present (dra: DraRecord, components: string[], directory: boolean, head: ObjectHead, client: Parameters<typeof getObjectText>[0], events: string[]): Promise<ApplyResult> {
    const repo = parseRepositoryPath(dra.DataRepositoryPath)
    const meta = decodePosixMetadata(head.meta)
    const type = directory ? 'directory' : entryTypeOf(head.key, meta)
    const item: ImportItem = {
      components, type, meta,
      remote: { dra: dra.AssociationId, bucket: repo.bucket, key: head.key, etag: head.etag, size: head.size, modified: head.modified }
    }
    const existing = await this.o.filesystem.resolve([dra.FileSystemPath.replace(/\/+$/, ''), ...components].join('/') || '/').catch(() => undefined)
    // The same object as here (a duplicate, or our own export's echo); a copy with new metadata
    // keeps the ETag but not the LastModified.
    const remote = existing?.remote
    if (existing !== undefined && !isDir(existing) && remote?.etag === head.etag && Math.floor(head.modified / 1000) <= Math.floor(remote.modified / 1000)) return 'ignored'
    if (type === 'symlink') item.target = await getObjectText(client, repo.bucket, head.key)
    const root = await this.o.filesystem.resolve(dra.FileSystemPath)
    const [outcome] = await importEntries(this.o.filesystem.ns, this.o.filesystem.content, root.ino, [item],
      { create: events.includes('NEW'), update: events.includes('CHANGED') })
    if (typeof outcome === 'object') {
      this.o.log.warn('automatic import could not apply an object', { event: outcome.error, associationId: dra.AssociationId, key: head.key, message: outcome.message })
      return 'ignored'
    }
    return outcome === 'created' || outcome === 'updated' ? 'applied' : 'ignored'
  }
}
