/**
 * Exporting subtrees on request, whatever the DRAs' automatic export policy: the work of an
 * EXPORT_TO_REPOSITORY task (spec/fsx-dra.md §16–17) and of `hsm archive` (`lfs hsm_archive`, §14.3).
 *
 * Each path is walked (task-walk.ts, streamed) and every entry "created or modified since the last
 * export" is exported by the same Exporter automatic export uses, so objects, POSIX metadata and HSM
 * states are the same whoever exports:
 *   regular file      never exported, dirty (hasLocalChanges), exported under another key, or
 *                     chmod/chown since (a server-side copy with the new metadata, no upload)
 *   directory/symlink no object recorded yet, under another key, or chmod/chown since
 * The DRA's own directory has no object. A hard link found again after its inode was exported in
 * this run is exported too: FSx exports each link in the task's paths as its own object (§12.2).
 *
 * At most `parallel` exports run at once and the walk waits for a free slot (back-pressure: memory
 * does not grow with the tree). An abort stops the walk and starts nothing new; exports in flight
 * finish (§16.4). Each file ends in one result with FSx's completion-report code (§17): checks that
 * S3 need not be asked about first (ResourceBusy, PathSizeTooLong, FileSizeTooLarge), then the
 * upload, retried a few times when S3 fails transiently (S3Error), once when the Exporter parks it
 * (access denied or a missing bucket made the DRA MISCONFIGURED: S3AccessDenied). A file that fails
 * keeps its HSM state (dirty, or 0x0): only a successful export marks it archived.
 */
import type { Logger } from '../daemon/logger'
import type { Associations } from '../dra/associations'
import type { DraRecord } from '../dra/association'
import { parseRepositoryPath } from '../dra/paths'
import { type FileSystem, hasLocalChanges } from '../fs/filesystem'
import { unlessGone } from '../util/errors'
import { type Inode, isDir, isReg, isSymlink, permissionsOf } from '../namespace/inode'
import { pathToKey } from '../repo/key-mapping'
import { describeS3Error } from '../repo/objects'
import { MAX_OBJECT_SIZE } from '../repo/uploads'
import type { Metrics } from '../util/metrics'
import { type Exporter, KEY_MAX } from './exporter'
import { aborted, treeOf, walkTree } from './task-walk'

export type ExportCode = 'ResourceBusy' | 'PathSizeTooLong' | 'FileSizeTooLarge' | 'S3AccessDenied' | 'S3Error' | 'InternalError'

/** How one entry ended; `gone`: removed before its turn (nothing left to export). */
export type EntryResult =
  | { ok: true, bytes: number }
  | { ok: false, code: ExportCode, message: string }
  | { gone: true }

export interface TreeExportEvents {
  /** A path given that cannot be exported at all (missing, outside every usable DRA). */
  problem: (path: string, message: string) => void | Promise<void>
  /** An entry to export, before its export starts. */
  found: (path: string, bytes: number) => void | Promise<void>
  /** Awaited before its slot is freed: a slow consumer slows the export down. */
  result: (path: string, result: EntryResult) => void | Promise<void>
  /** The walk is over (exports may still be in flight): no more `found`; `skipped` as in the summary. */
  walked?: (skipped: number) => void | Promise<void>
}

export interface TreeExportOptions {
  parallel: number
  signal?: AbortSignal
  on: TreeExportEvents
}

export interface TreeExportSummary {
  /** Entries walked that needed nothing (already exported and clean). */
  skipped: number
}

const ATTEMPTS = 3
const RETRY_MS = 500
/** Where exports may go: as Exporter.run, which parks the others. */
const USABLE = new Set(['AVAILABLE', 'UPDATING'])

/**
 * Entries of these kinds have an S3 form (devices, FIFOs and sockets do not). `at` is where the
 * entry belongs now: one exported under another key or bucket (renamed, or its DRA recreated
 * elsewhere) is exported again there.
 */
export function needsExport (inode: Inode, at: { bucket: string, key: string }): boolean {
  if (!isReg(inode) && !isDir(inode) && !isSymlink(inode)) return false
  if (inode.remote === undefined) return true
  if (inode.remote.key !== at.key || inode.remote.bucket !== at.bucket) return true
  if (inode.remote.perm !== undefined && inode.remote.perm !== permissionsOf(inode)) return true // chmod, chown
  return isReg(inode) && hasLocalChanges(inode)
}

export class TreeExport {
  private metrics?: Metrics

  constructor (private readonly o: { filesystem: FileSystem, exporter: Exporter, associations: Associations, log: Logger }) {}

  /** The file system walked (release tasks walk it too). */
  get filesystem (): FileSystem { return this.o.filesystem }

  useMetrics (metrics: Metrics): void {
    this.metrics = metrics
  }

  /** The DRA a path from the mount root lies in, or why it cannot be exported. */
  draFor (path: string): DraRecord | string {
    const dra = this.o.exporter.draForPath(path)
    if (dra === undefined) return `${path} is not in a data repository association`
    if (!USABLE.has(dra.Lifecycle)) {
      return `association ${dra.AssociationId} (${dra.FileSystemPath}) is ${dra.Lifecycle}${dra.FailureDetails !== undefined ? `: ${dra.FailureDetails.Message}` : ''}`
    }
    return dra
  }

  /**
   * The paths to walk for `path` (from the mount root): itself inside a DRA; the directories of
   * the DRAs below it (`/` for all of them); or why there is nothing to export there.
   */
  rootsFor (path: string): string[] | string {
    if (this.o.exporter.draForPath(path) !== undefined) return [path]
    const base = path.replace(/\/+$/, '')
    const below = this.o.associations.list().map((d) => d.FileSystemPath.replace(/\/+$/, '')).filter((p) => p.startsWith(base + '/'))
    return below.length > 0 ? below.sort() : `${path} is not in a data repository association`
  }

  /** Exports what needs it under each path (paths from the mount root: '/ns1/dir'). */
  async run (paths: string[], o: TreeExportOptions): Promise<TreeExportSummary> {
    const { filesystem } = this.o
    const tree = treeOf(filesystem)
    const slots = new Slots(Math.max(1, o.parallel))
    const inFlight = new Set<Promise<void>>()
    const linked = new Set<number>()
    let skipped = 0
    for (const root of paths) {
      if (aborted(o.signal)) break
      const dra = this.draFor(root)
      if (typeof dra === 'string') {
        await o.on.problem(root, dra)
        continue
      }
      for await (const item of walkTree(tree, root, o.signal)) {
        if ('error' in item) {
          await o.on.problem(item.path, messageOf(item.error))
          continue
        }
        const { path, inode } = item
        if (path === dra.FileSystemPath.replace(/(.)\/+$/, '$1')) continue // the DRA's directory: no object
        const again = inode.nlink > 1 && !isDir(inode) && linked.has(inode.ino)
        if (!needsExport(inode, this.placeOf(path, inode, dra)) && !again) {
          skipped++
          continue
        }
        if (isReg(inode) && inode.nlink > 1) linked.add(inode.ino)
        await slots.take()
        if (aborted(o.signal)) { slots.give(); break } // canceled while waiting for the slot
        await o.on.found(path, isReg(inode) ? inode.size : 0)
        const job = this.exportOne(path, o.signal)
          .then(async (result) => { await o.on.result(path, result) })
          .catch((err: unknown) => { this.o.log.error('reporting an export result failed', { path, error: messageOf(err) }) })
          .finally(() => { slots.give(); inFlight.delete(job) })
        inFlight.add(job)
      }
    }
    await o.on.walked?.(skipped)
    await Promise.all(inFlight)
    return { skipped }
  }

  /** Exports one entry now; never throws. */
  async exportOne (path: string, signal?: AbortSignal): Promise<EntryResult> {
    let inode: Inode | undefined
    try {
      inode = await unlessGone(this.o.filesystem.resolve(path))
    } catch (err) {
      return this.fail(path, 'InternalError', messageOf(err))
    }
    if (inode === undefined) return { gone: true }
    const dra = this.o.exporter.draForPath(path)
    if (dra === undefined) return this.fail(path, 'InternalError', `${path} is no longer in a data repository association`)
    const problem = this.check(path, inode, dra)
    if (problem !== undefined) return this.fail(path, problem[0], problem[1])
    // Only changed content is uploaded; a chmod/chown or a rename of a clean file is a server-side copy.
    const entry = { seq: 0, path, op: 'put' as const, content: hasLocalChanges(inode), queuedAt: Date.now() }
    for (let attempt = 1; ; attempt++) {
      let outcome
      try {
        outcome = await this.o.exporter.run(entry, { policy: 'all' })
      } catch (err) {
        // Before any S3 call (the bucket's client, the content file): the Exporter did not log it.
        return this.fail(path, codeOf(err), describeS3Error(err))
      }
      if (outcome === 'done') return { ok: true, bytes: isReg(inode) ? inode.size : 0 }
      if (outcome === 'park') return this.parked(dra.AssociationId)
      if (this.o.filesystem.isBeingWritten(inode.ino)) return this.fail(path, 'ResourceBusy', 'the file is open for writing')
      if (attempt >= ATTEMPTS || aborted(signal)) return { ok: false, code: 'S3Error', message: `S3 failed ${attempt} times (the log has each error)` }
      await sleep(RETRY_MS * 2 ** (attempt - 1), signal)
    }
  }

  /** The bucket and key an entry at this path exports to. */
  private placeOf (path: string, inode: Inode, dra: DraRecord): { bucket: string, key: string } {
    const { bucket, prefix } = parseRepositoryPath(dra.DataRepositoryPath)
    return { bucket, key: pathToKey(prefix, relative(path, dra.FileSystemPath), isDir(inode)) }
  }

  /** What S3 need not be asked about; the Exporter would skip these silently. */
  private check (path: string, inode: Inode, dra: DraRecord): [ExportCode, string] | undefined {
    if (isReg(inode) && this.o.filesystem.isBeingWritten(inode.ino)) return ['ResourceBusy', 'the file is open for writing']
    const { key } = this.placeOf(path, inode, dra)
    if (Buffer.byteLength(key) > KEY_MAX) return ['PathSizeTooLong', `its key would be ${Buffer.byteLength(key)} bytes long, more than S3's ${KEY_MAX}`]
    if (isReg(inode) && inode.size > MAX_OBJECT_SIZE) return ['FileSizeTooLarge', 'the file is larger than 5 TiB, the largest S3 object']
    return undefined
  }

  /**
   * The Exporter parks what cannot go to the DRA now: access denied or a missing bucket made it
   * MISCONFIGURED (that error is logged), or it is being created, updated away or deleted.
   */
  private parked (draId: string): EntryResult {
    const dra = this.o.associations.get(draId)
    const message = dra?.FailureDetails?.Message ?? `association ${draId} is ${dra?.Lifecycle ?? 'gone'}`
    return { ok: false, code: dra?.Lifecycle === 'MISCONFIGURED' ? 'S3AccessDenied' : 'InternalError', message }
  }

  private fail (path: string, code: ExportCode, message: string): EntryResult {
    this.o.log.warn('not exported', { event: code, path, reason: message })
    this.metrics?.exportFailures.inc({ code })
    return { ok: false, code, message }
  }
}

/** A counting semaphore: take() waits for a free slot. */
class Slots {
  private readonly waiting: Array<() => void> = []

  constructor (private free: number) {}

  async take (): Promise<void> {
    if (this.free > 0) { this.free--; return }
    await new Promise<void>((resolve) => this.waiting.push(resolve))
  }

  give (): void {
    const next = this.waiting.shift()
    if (next !== undefined) next()
    else this.free++
  }
}

/** Components of path below the DRA's directory. */
function relative (path: string, dir: string): string[] {
  const d = dir.replace(/\/+$/, '')
  return path.slice(d.length).split('/').filter((c) => c !== '')
}

function codeOf (err: unknown): ExportCode {
  const e = err as { name?: string, $metadata?: { httpStatusCode?: number } }
  if (e.$metadata === undefined) return 'InternalError'
  return e.$metadata.httpStatusCode === 403 || e.name === 'AccessDenied' ? 'S3AccessDenied' : 'S3Error'
}

async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms)
    function done (): void { clearTimeout(timer); signal?.removeEventListener('abort', done); resolve() }
    signal?.addEventListener('abort', done, { once: true })
  })
}


function messageOf (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
