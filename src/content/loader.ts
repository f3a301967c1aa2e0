/**
 * Lazy loading of released files (spec/fsx-dra.md §14.1). The first access starts one background
 * download of the whole object into the (sparse) content file, front to back; every reader of the
 * file shares it. A read waits only for its own range: if that range lies well ahead of the
 * download's front, it is fetched at once with a ranged GET of its own ("range first"), so the
 * time to first byte does not depend on where in the file one reads.
 *
 * No reader waits past `deadlineMs` (set below the FUSE request timeout, so the kernel always gets
 * an answer): it gets EIO, as does every reader when the download fails; the next read starts
 * again. A loaded file is reported through `onLoaded` (the caller clears its released flag). A
 * download interrupted by a crash leaves the file released: the next load starts from scratch.
 *
 * With a bounded cache (./cache.ts), a load first takes room for the whole object (`space`); when
 * there is none, its readers get ENOSPC ("No space left on device" names the cause better than
 * EIO would) and nothing is downloaded. The room is given back once the loaded file counts as local.
 */
import { fsError, FsError } from '../util/errors'
import type { Inode } from '../namespace/inode'
import type { ContentStore } from './content'

/** A stream of the object's bytes [start, end) (end undefined: to the end of the object). */
export type RangeFetch = (start: number, end: number | undefined, signal: AbortSignal) => Promise<AsyncIterable<Uint8Array>>

export interface LoaderOptions {
  /** How to fetch an inode's object; throws if it has none reachable. */
  fetcherFor: (inode: Inode) => Promise<RangeFetch>
  onLoaded: (ino: number, etag: string) => Promise<void>
  deadlineMs: number
  /** A read this far ahead of the download's front gets a ranged GET of its own. */
  aheadBytes?: number
  /** Smallest ranged GET (reads are small; neighbours usually follow). */
  rangeBytes?: number
  onError?: (ino: number, err: unknown) => void
  /** Room in the bounded cache for a load (src/content/cache.ts); throws ENOSPC when there is none. */
  space?: { reserve: (bytes: number, what: string) => Promise<void>, unreserve: (bytes: number) => void }
}

const WRITE_BATCH = 1 << 20
const WRITES_IN_FLIGHT = 8

interface Waiter { start: number, end: number, resolve: () => void, reject: (err: Error) => void }

/**
 * Write batches, reused: a load copies its HTTP chunks into them. A new 1 MiB buffer per batch
 * (Buffer.concat) made a 1 GiB load allocate 1 GiB more, and the garbage collector then took more
 * of the event loop than the download itself.
 */
class BatchPool {
  private readonly free: Buffer[] = []

  take (): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(WRITE_BATCH)
  }

  give (buf: Buffer): void {
    if (this.free.length < 2 * WRITES_IN_FLIGHT) this.free.push(buf)
  }
}

class Load {
  /** Loaded byte ranges [start, end), sorted and merged. */
  extents: Array<[number, number]> = []
  front = 0
  waiters: Waiter[] = []
  failed?: Error
  readonly abort = new AbortController()
  /** Each body being copied in: writes what it holds if that reaches a waiter (see copyIn). */
  readonly copying = new Set<() => void>()
  done!: Promise<void>

  /**
   * @param inOrder the content file grows front to back with no hole ever (no sparse file, no
   *   range first, one write at a time): descriptors the kernel serves from it directly (FUSE
   *   passthrough) never read bytes not loaded yet, only a shorter file
   */
  constructor (readonly ino: number, readonly etag: string, readonly size: number, readonly fd: Promise<number>, readonly fetch: Promise<RangeFetch>, readonly inOrder: boolean) {
    fetch.catch(() => undefined) // awaited by the download, which reports the failure
  }

  has (start: number, end: number): boolean {
    if (end <= this.front) return true
    return this.extents.some(([s, e]) => s <= start && end <= e)
  }

  add (start: number, end: number): void {
    if (start <= this.front && end > this.front) this.front = end
    const all = [...this.extents, [start, end] as [number, number]].sort((a, b) => a[0] - b[0])
    const merged: Array<[number, number]> = []
    for (const [s, e] of all) {
      const last = merged[merged.length - 1]
      if (last !== undefined && s <= last[1]) last[1] = Math.max(last[1], e)
      else merged.push([s, e])
    }
    this.extents = merged
    // The front moves over ranges fetched ahead of it.
    for (const [s, e] of merged) if (s <= this.front && e > this.front) this.front = e
    this.waiters = this.waiters.filter((w) => {
      if (!this.has(w.start, w.end)) return true
      w.resolve()
      return false
    })
  }

  fail (err: Error): void {
    this.failed ??= err
    for (const w of this.waiters) w.reject(err)
    this.waiters = []
  }
}

/** Whether writing the stream's bytes [from, upTo) ends a waiting reader's range. */
function completesAWaiter (load: Load, from: number, upTo: number): boolean {
  for (const w of load.waiters) if (from < w.end && w.end <= upTo) return true
  return false
}

export class ContentLoader {
  private readonly loads = new Map<number, Load>()
  private readonly batches = new BatchPool()
  private readonly ahead: number
  private readonly rangeBytes: number

  constructor (private readonly content: ContentStore, private readonly o: LoaderOptions) {
    this.ahead = o.aheadBytes ?? 8 << 20
    this.rangeBytes = o.rangeBytes ?? 1 << 20
  }

  /** Resolves once bytes [offset, offset+length) of the released file are in its content file. */
  async ensure (inode: Inode, offset: number, length: number): Promise<void> {
    const end = Math.min(inode.size, offset + length)
    if (end <= offset) return
    const load = this.loadOf(inode)
    if (load.has(offset, end)) return
    if (!load.inOrder && offset > load.front + this.ahead) this.fetchRange(load, offset, Math.min(load.size, Math.max(end, offset + this.rangeBytes)))
    await this.wait(load, offset, end)
  }

  /**
   * The whole file (before a write or a truncate to a non-zero size). `inOrder`: a load this
   * starts grows the file front to back (see Load).
   */
  async ensureAll (inode: Inode, inOrder = false): Promise<void> {
    if (inode.size === 0) return
    await this.wait(this.loadOf(inode, inOrder), 0, inode.size)
  }

  /** Stops a load (the file was truncated to zero or removed); its readers get EIO. */
  cancel (ino: number): void {
    const load = this.loads.get(ino)
    if (load === undefined) return
    this.loads.delete(ino)
    load.abort.abort()
    load.fail(fsError('EIO', 'the load was cancelled: the file changed'))
  }

  async close (): Promise<void> {
    const loads = [...this.loads.values()]
    for (const load of loads) this.cancel(load.ino)
    await Promise.allSettled(loads.map(async (l) => await l.done))
  }

  private loadOf (inode: Inode, inOrder = false): Load {
    const etag = inode.remote?.etag ?? ''
    let load = this.loads.get(inode.ino)
    if (load !== undefined && load.failed === undefined && load.etag === etag) return load
    if (load !== undefined) this.cancel(inode.ino)
    load = new Load(inode.ino, etag, inode.size, this.content.acquire(inode.ino), this.o.fetcherFor(inode), inOrder)
    this.loads.set(inode.ino, load)
    load.done = this.download(load)
    return load
  }

  private async download (load: Load): Promise<void> {
    let reserved = 0
    try {
      if (this.o.space !== undefined && load.size > 0) {
        await this.o.space.reserve(load.size, `loading inode ${load.ino} from S3`)
        reserved = load.size
      }
      const fd = await load.fd
      // Bytes from an earlier, interrupted load may be stale: start from an empty sparse file.
      await this.content.resize(fd, 0)
      if (!load.inOrder) await this.content.resize(fd, load.size)
      const fetch = await load.fetch
      if (load.size > 0) {
        const body = await fetch(0, undefined, load.abort.signal)
        const pos = await this.copyIn(load, fd, body, 0)
        if (pos < load.size) throw new Error(`the object ended after ${pos} of ${load.size} bytes`)
      }
      load.add(0, load.size)
      if (this.loads.get(load.ino) === load) {
        await this.o.onLoaded(load.ino, load.etag)
        this.loads.delete(load.ino)
      }
    } catch (err) {
      const noSpace = err instanceof FsError && err.code === 'ENOSPC'
      if (this.loads.get(load.ino) === load) {
        this.loads.delete(load.ino)
        // The cache logged the lack of space; the S3 side did nothing wrong.
        if (!noSpace) this.o.onError?.(load.ino, err)
      }
      load.fail(noSpace ? err as FsError : fsError('EIO', `loading the content from S3 failed: ${(err as Error).message}`))
    } finally {
      // After onLoaded: the file counts as local now, so the room it held can go.
      if (reserved > 0) this.o.space?.unreserve(reserved)
      await this.content.release(load.ino).catch(() => undefined)
    }
  }

  private fetchRange (load: Load, start: number, end: number): void {
    void (async () => {
      const fd = await load.fd
      const fetch = await load.fetch
      const body = await fetch(start, end, load.abort.signal)
      const pos = await this.copyIn(load, fd, body, start)
      if (pos !== end) throw new Error(`a ranged GET returned ${pos - start} of ${end - start} bytes`)
    })().catch(() => {
      // The background download still covers this range; its readers wait for it instead.
    })
  }

  /**
   * Writes a body into the content file from `start`, marking each written range loaded. HTTP
   * chunks (16-64 KiB) are gathered into writes of up to WRITE_BATCH bytes (fewer thread-pool
   * round trips), except that a write goes at once when it completes a waiting reader's range
   * (writing every chunk while anyone waited, `hsm restore` for the whole file, cost 4/5 of the
   * download's speed). Up to WRITES_IN_FLIGHT writes run while the body streams on: waiting for
   * each before reading more made the download half as fast as the GET alone.
   *
   * A reader may also start waiting for bytes a batch holds already (they came while nobody
   * waited): wait() calls `writeIfWaited`, or the reader would wait for the next chunk, which a
   * slow or stalled server may send only after the reader's deadline.
   */
  private async copyIn (load: Load, fd: number, body: AsyncIterable<Uint8Array>, start: number): Promise<number> {
    let pos = start
    let batch: Buffer | undefined
    let filled = 0
    const inFlight = new Set<Promise<void>>()
    let failed: unknown
    let ending = false
    const startWrite = (): void => {
      if (batch === undefined || filled === 0) return
      const buf = batch
      const bytes = filled
      const at = pos
      batch = undefined
      filled = 0
      pos += bytes
      const write: Promise<void> = this.content.write(fd, buf.subarray(0, bytes), at).then(
        () => { load.add(at, at + bytes) },
        (err: unknown) => { failed ??= err }
      ).finally(() => {
        inFlight.delete(write)
        this.batches.give(buf)
        writeIfWaited()
      })
      inFlight.add(write)
    }
    // In order, a held batch waits for the write in flight: never a hole.
    const writeIfWaited = (): void => {
      if (!ending && filled > 0 && (!load.inOrder || inFlight.size === 0) && completesAWaiter(load, pos, pos + filled)) startWrite()
    }
    const flush = async (): Promise<void> => {
      if (load.inOrder) while (inFlight.size > 0) await Promise.race(inFlight)
      startWrite()
      if (inFlight.size >= (load.inOrder ? 1 : WRITES_IN_FLIGHT)) await Promise.race(inFlight)
      if (failed !== undefined) throw failed
    }
    load.copying.add(writeIfWaited)
    try {
      for await (const chunk of body) {
        if (pos + filled + chunk.byteLength > load.size) throw new Error('the object is larger than when it was imported')
        for (let used = 0; used < chunk.byteLength;) {
          batch ??= this.batches.take()
          const n = Math.min(chunk.byteLength - used, WRITE_BATCH - filled)
          batch.set(chunk.subarray(used, used + n), filled)
          filled += n
          used += n
          if (filled === WRITE_BATCH) await flush()
        }
        if (filled > 0 && completesAWaiter(load, pos, pos + filled)) await flush()
      }
      await flush()
    } finally {
      ending = true
      load.copying.delete(writeIfWaited)
      // Whatever happened, no write may outlive this call: the caller closes the descriptor next.
      await Promise.allSettled([...inFlight])
      if (batch !== undefined) this.batches.give(batch)
    }
    if (failed !== undefined) throw failed
    return pos
  }

  private async wait (load: Load, start: number, end: number): Promise<void> {
    if (load.failed !== undefined) throw load.failed
    if (load.has(start, end)) return
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        load.waiters = load.waiters.filter((w) => w !== waiter)
        reject(fsError('EIO', `loading the content from S3 took longer than ${this.o.deadlineMs} ms`))
      }, this.o.deadlineMs)
      const waiter: Waiter = {
        start,
        end,
        resolve: () => { clearTimeout(timer); resolve() },
        reject: (err) => { clearTimeout(timer); reject(err) }
      }
      load.waiters.push(waiter)
      for (const writeIfWaited of load.copying) writeIfWaited()
    })
  }
}
