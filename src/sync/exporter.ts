/**
 * Exports one queued path (export-queue.ts) per its DRA's export policy (spec/fsx-dra.md §12),
 * making S3 match the path's state *now*:
 *   directory      zero-byte marker `key/`;  symlink: an object whose body is the target
 *   regular file   its content (multipart above one part) — or, when only metadata changed or the
 *                  content is only in S3 (released), a server-side copy with the new metadata
 *                  (chmod/chown, renames)
 *   delete         the key and its marker form, unless the path exists again
 * every object carrying FSx POSIX metadata. NEW gates paths never in S3, CHANGED the others,
 * DELETED the deletions. Skipped with FSx's event codes: keys over 1,024 bytes
 * (S3ExportPathSizeTooLong), files over 5 TiB (FileSizeTooLarge), paths in no DRA.
 * Success marks the file `exists archived` if it did not change meanwhile (else it stays dirty and
 * its newer queue entry exports it again).
 */
import type { Logger } from '../daemon/logger'
import type { Associations } from '../dra/associations'
import { type DraRecord, EVENT_TYPES, exportEvents } from '../dra/association'
import { parseRepositoryPath } from '../dra/paths'
import type { FileSystem } from '../fs/filesystem'
import { unlessGone } from '../util/errors'
import { draOfFsPath } from './task-targets'
import { type Inode, type RemoteRef, isDir, isReg, isSymlink, permissionsOf } from '../namespace/inode'
import { HS_ARCHIVED, HS_DIRTY, HS_EXISTS, HS_RELEASED, isReleased } from '../namespace/hsm'
import { pathToKey } from '../repo/key-mapping'
import { encodePosixMetadata } from '../repo/posix-metadata'
import { describeS3Error, s3ErrorCode } from '../repo/objects'
import type { S3Clients } from '../repo/s3-clients'
import type { Target, Transfers } from '../repo/transfers'
import { MAX_OBJECT_SIZE } from '../repo/uploads'
import type { Metrics } from '../util/metrics'
import type { ExportEntry, ExportOutcome } from './export-queue'

/** S3's longest key, in bytes. */
export const KEY_MAX = 1024

export interface RunOptions {
  /**
   * 'dra' (automatic export): the DRA's AutoExportPolicy events gate the entry. 'all': exported
   * whatever the policy, as export tasks and hsm archive do (FSx runs those only without one).
   */
  policy?: 'dra' | 'all'
}

export class Exporter {
  constructor (private readonly o: { associations: Associations, filesystem: FileSystem, clients: S3Clients, transfers: Transfers, log: Logger, metrics?: Metrics }) {}

  useMetrics (metrics: Metrics): void {
    this.o.metrics = metrics
  }

  /** The DRA whose directory holds path (by component), if any. */
  draForPath (path: string): DraRecord | undefined {
    return draOfFsPath(this.o.associations.list(), path)
  }

  /** Paths worth queueing: inside a DRA with an export policy. */
  exported (path: string): boolean {
    const dra = this.draForPath(path)
    return dra !== undefined && exportEvents(dra).length > 0
  }

  async run (entry: ExportEntry, o: RunOptions = {}): Promise<ExportOutcome> {
    const dra = this.draForPath(entry.path)
    if (dra === undefined) return 'done'
    if (dra.Lifecycle !== 'AVAILABLE' && dra.Lifecycle !== 'UPDATING') return 'park'
    const events: string[] = o.policy === 'all' ? [...EVENT_TYPES] : exportEvents(dra)
    const repo = parseRepositoryPath(dra.DataRepositoryPath)
    const components = relative(entry.path, dra.FileSystemPath)
    const { client, entry: bucketEntry } = await this.o.clients.forBucket(repo.bucket)
    const target: Target = { client, bucket: repo.bucket, entry: bucketEntry }
    try {
      if (entry.op === 'delete') return await this.remove(entry, events, target, repo.prefix, components)
      return await this.put(entry, dra, events, target, repo.prefix, components)
    } catch (err) {
      return await this.failed(dra, entry, err)
    }
  }

  private async remove (entry: ExportEntry, events: string[], t: Target, prefix: string, components: string[]): Promise<ExportOutcome> {
    if (!events.includes('DELETED') || components.length === 0) return 'done'
    if (await this.o.filesystem.resolve(entry.path).then(() => true, () => false)) return 'done' // back again: its put follows
    const key = pathToKey(prefix, components, false)
    await this.o.transfers.deleteKeys(t, [key, key + '/'])
    this.count('deleted')
    this.o.log.debug('exported a deletion', { path: entry.path, key })
    return 'done'
  }

  private async put (entry: ExportEntry, dra: DraRecord, events: string[], t: Target, prefix: string, components: string[]): Promise<ExportOutcome> {
    // Settled: the object's metadata is what a copy to a new key (a renamed directory's files) carries.
    const inode = await unlessGone(this.o.filesystem.resolveSettled(entry.path))
    if (inode === undefined) return 'done' // gone since: its delete entry tells S3
    if (components.length === 0) return 'done' // the DRA's own directory has no object
    // Still open for writing (a close of one descriptor queued it): stays queued, with backoff,
    // until the last writer closes (which queues it afresh). Dropping it relied on that close
    // coming: a kill -9 before it lost the export of what the first close had saved.
    if (this.o.filesystem.isBeingWritten(inode.ino)) return 'retry'
    const isNew = inode.remote === undefined
    if (!events.includes(isNew ? 'NEW' : 'CHANGED')) return 'done'
    const key = pathToKey(prefix, components, isDir(inode))
    if (Buffer.byteLength(key) > KEY_MAX) return this.skip(entry, 'S3ExportPathSizeTooLong', `the key would be longer than ${KEY_MAX} bytes`)
    if (inode.size > MAX_OBJECT_SIZE) return this.skip(entry, 'FileSizeTooLarge', 'the file is larger than 5 TiB')
    const snapshot = { size: inode.size, mtimeNs: inode.mtimeNs, ctimeNs: inode.ctimeNs }
    const metadata = encodePosixMetadata(inode)
    const perm = permissionsOf(inode)
    let etag: string
    if (isDir(inode)) etag = (await this.o.transfers.putText(t, key, '', metadata)).etag
    else if (isSymlink(inode)) etag = (await this.o.transfers.putText(t, key, inode.target ?? '', metadata)).etag
    else if (this.contentUnchanged(inode, entry, key) && inode.remote !== undefined) etag = (await this.o.transfers.copyWithMetadata(t, inode.remote.key, key, metadata)).etag
    // Not released while it is read: the upload reads the content file by its path, outside any handle.
    else etag = (await this.o.filesystem.withContent(inode.ino, async () => await this.o.transfers.putFile(t, key, this.o.filesystem.content.pathOf(inode.ino), inode.size, metadata))).etag
    const remote: RemoteRef = { dra: dra.AssociationId, bucket: t.bucket, key, etag, size: inode.size, modified: Date.now(), perm }
    await this.markExported(entry.path, inode.ino, snapshot, remote)
    this.count('exported', inode.size)
    this.o.log.debug('exported', { path: entry.path, key, bytes: inode.size })
    return 'done'
  }

  /** The object under remote.key already has this content: only metadata or the key changes. */
  private contentUnchanged (inode: Inode, entry: ExportEntry, key: string): boolean {
    if (!isReg(inode) || inode.remote === undefined) return false
    if (isReleased(inode.hsm)) return true
    // A hard-linked file's object may be another name's, which a rename over that name may be
    // replacing right now: its local content is the sure source.
    if (inode.nlink > 1 && inode.remote.key !== key) return false
    const hsm = inode.hsm ?? 0
    return !entry.content && (hsm & HS_ARCHIVED) !== 0 && (hsm & HS_DIRTY) === 0
  }

  /**
   * Records the object on the inode; clean (`exists archived`) only if nothing changed meanwhile.
   * Grouped with other exports' records: one batch for a burst of small files.
   */
  private async markExported (path: string, ino: number, snapshot: { size: number, mtimeNs: bigint, ctimeNs: bigint }, remote: RemoteRef): Promise<void> {
    const { ns } = this.o.filesystem
    await ns.mutateGrouped(async (tx) => {
      const inode = await unlessGone(this.o.filesystem.resolve(path))
      if (inode === undefined || inode.ino !== ino) return
      inode.remote = remote
      const unchanged = inode.size === snapshot.size && inode.mtimeNs === snapshot.mtimeNs && inode.ctimeNs === snapshot.ctimeNs
      if (isReg(inode) && unchanged) inode.hsm = HS_EXISTS | HS_ARCHIVED | ((inode.hsm ?? 0) & HS_RELEASED)
      tx.putInode(inode)
    })
  }

  private skip (entry: ExportEntry, code: string, why: string): ExportOutcome {
    this.o.log.warn('not exported', { event: code, path: entry.path, reason: why })
    this.o.metrics?.exportFailures.inc({ code })
    return 'done'
  }

  /**
   * Access denied or a missing bucket will not pass by retrying: the DRA goes MISCONFIGURED (its
   * entries wait for the health check to find it usable); anything else is retried with backoff.
   */
  private async failed (dra: DraRecord, entry: ExportEntry, err: unknown): Promise<ExportOutcome> {
    const known = s3ErrorCode(err)
    const final = known === 'S3AccessDenied' || known === 'S3BucketNotFound'
    const code = final ? known : 'S3Error'
    this.o.metrics?.exportFailures.inc({ code })
    this.o.log.warn('export failed', { event: code, path: entry.path, error: describeS3Error(err), retry: final ? 'when the association is usable again' : 'with backoff' })
    if (!final) return 'retry'
    await this.o.associations.settle(dra.AssociationId, 'MISCONFIGURED', `export to S3 failed: ${describeS3Error(err)}`)
    return 'park'
  }

  private count (what: 'exported' | 'deleted', bytes = 0): void {
    this.o.metrics?.objectsExported.inc({ op: what })
    if (bytes > 0) this.o.metrics?.bytesExported.inc(bytes)
  }
}

function relative (path: string, dir: string): string[] {
  const d = dir.replace(/\/+$/, '')
  return path.slice(d.length).split('/').filter((c) => c !== '')
}
