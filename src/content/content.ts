/**
 * Local file contents: one sparse file per inode under `data/<last two hex digits>/<ino16>`.
 *
 * A content file exists only once something was written (or the file was truncated to a non-zero
 * size): creating or stat'ing empty files costs no disk I/O. Open content files are shared per
 * inode with a reference count, so many handles on one file use one descriptor. All I/O is
 * asynchronous on libuv's thread pool (UV_THREADPOOL_SIZE sizes it): nothing here blocks the event
 * loop that FUSE handlers run on.
 */
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { inoHex } from '../store/keys'

const fsRead = promisify(fs.read)
const fsWrite = promisify(fs.write)
const fsOpen = promisify(fs.open)
const fsClose = promisify(fs.close)
const fsFtruncate = promisify(fs.ftruncate)
const fsFdatasync = promisify(fs.fdatasync)
const fsFsync = promisify(fs.fsync)

/** Marks a file's content for emptying once the batch commits (ContentStore.dropping). */
export type Drop = (ino: number) => void

interface OpenContent {
  fd: Promise<number>
  refs: number
}

export class ContentStore {
  private readonly open = new Map<number, OpenContent>()
  /** Content files about to be emptied (their files are being marked released): acquire() waits. */
  private readonly emptying = new Map<number, Promise<void>>()

  private constructor (readonly dir: string) {}

  static async create (dir: string): Promise<ContentStore> {
    // The 256 shard directories are made once, so no write ever waits for a mkdir.
    await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 })
    await Promise.all(Array.from({ length: 256 }, (_, i) =>
      fs.promises.mkdir(path.join(dir, i.toString(16).padStart(2, '0')), { recursive: true, mode: 0o700 })))
    return new ContentStore(dir)
  }

  pathOf (ino: number): string {
    const hex = inoHex(ino)
    return path.join(this.dir, hex.slice(-2), hex)
  }

  /**
   * Takes a reference on the inode's content file, creating it if needed. While the file is being
   * emptied (dropping), the descriptor comes only once it is empty, so no byte written through it
   * is cut.
   */
  acquire (ino: number): Promise<number> {
    const fd = this.hold(ino)
    const emptying = this.emptying.get(ino)
    return emptying === undefined ? fd : emptying.then(async () => await fd)
  }

  /** acquire() without waiting for an emptying (the emptying's own). */
  private hold (ino: number): Promise<number> {
    let entry = this.open.get(ino)
    if (entry === undefined) {
      entry = { fd: fsOpen(this.pathOf(ino), fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600), refs: 0 }
      this.open.set(ino, entry)
      entry.fd.catch(() => this.open.delete(ino))
    }
    entry.refs++
    return entry.fd
  }

  async release (ino: number): Promise<void> {
    const entry = this.open.get(ino)
    if (entry === undefined) return
    if (--entry.refs > 0) return
    this.open.delete(ino)
    await fsClose(await entry.fd)
  }

  /**
   * Reads into buf at offset, for a file of `size` bytes. Bytes the content file lacks (a hole
   * at its end after a truncate that grew the file) read as zeros, as in any sparse file.
   */
  async read (fd: number, buf: Buffer, offset: number, size: number): Promise<number> {
    const want = Math.max(0, Math.min(buf.length, size - offset))
    if (want === 0) return 0
    const { bytesRead: got } = await fsRead(fd, buf, 0, want, offset)
    if (got < want) buf.fill(0, got, want)
    return want
  }

  async write (fd: number, buf: Buffer, offset: number): Promise<number> {
    let done = 0
    while (done < buf.length) {
      done += (await fsWrite(fd, buf, done, buf.length - done, offset + done)).bytesWritten
    }
    return done
  }

  /** Called before a content file is truncated or emptied (whoever reads it directly must stop). */
  onTruncate?: (ino: number) => void
  /** Called once a content file open somewhere was emptied. */
  onEmptied?: (ino: number) => void

  async truncate (ino: number, size: number): Promise<void> {
    this.onTruncate?.(ino)
    if (size === 0 && !this.open.has(ino)) {
      await fs.promises.truncate(this.pathOf(ino), 0).catch(ignoreMissing)
      return
    }
    const fd = await this.hold(ino)
    try {
      await fsFtruncate(fd, size)
    } finally {
      await this.release(ino)
    }
    if (size === 0) this.onEmptied?.(ino)
  }

  /**
   * Runs a batch that may mark files released (a changed object, hsm_release) and empties their
   * content files once it committed; if it failed, their bytes are still theirs and stay. An
   * emptying that fails is thrown once all have ended (the next load starts from an empty file
   * anyway: loader.ts). `drop(ino)` goes in the same synchronous step as the mark: from the moment
   * anyone can see a file released, a load of it may start, and its descriptor (acquire) waits for
   * the emptying, or the emptying would cut the bytes it loaded.
   */
  async dropping<T> (batch: (drop: Drop) => Promise<T>): Promise<T> {
    const finishes = new Map<number, (empty: boolean) => Promise<void>>()
    const drop: Drop = (ino) => { if (!finishes.has(ino)) finishes.set(ino, this.startEmptying(ino)) }
    let committed = false
    try {
      const result = await batch(drop)
      committed = true
      return result
    } finally {
      // Every file's emptying ends, even after one failed: its readers would wait forever.
      const ends = await Promise.allSettled([...finishes.values()].map(async (finish) => await finish(committed)))
      const failed = ends.find((end): end is PromiseRejectedResult => end.status === 'rejected')
      if (failed !== undefined) throw failed.reason
    }
  }

  /** An emptying announced (acquire waits for it); the step returned empties the file, or not. */
  private startEmptying (ino: number): (empty: boolean) => Promise<void> {
    let finished = (): void => undefined
    const own = new Promise<void>((resolve) => { finished = resolve })
    const before = this.emptying.get(ino)
    const pending = before === undefined ? own : Promise.all([before, own]).then(() => undefined)
    this.emptying.set(ino, pending)
    return async (empty) => {
      try {
        if (empty) await this.truncate(ino, 0)
      } finally {
        finished()
        if (this.emptying.get(ino) === pending) this.emptying.delete(ino)
      }
    }
  }

  /** ftruncate(2) of a content file already acquired. */
  async resize (fd: number, size: number): Promise<void> {
    await fsFtruncate(fd, size)
  }

  /** stat(2) of a content file, times in nanoseconds. */
  async stat (ino: number): Promise<fs.BigIntStats> {
    return await fs.promises.stat(this.pathOf(ino), { bigint: true })
  }

  async sync (ino: number, dataOnly: boolean): Promise<void> {
    const entry = this.open.get(ino)
    if (entry === undefined) return
    const fd = await entry.fd
    await (dataOnly ? fsFdatasync(fd) : fsFsync(fd))
  }

  async remove (ino: number): Promise<void> {
    await fs.promises.unlink(this.pathOf(ino)).catch(ignoreMissing)
  }

  /** Closes every descriptor (shutdown). */
  async close (): Promise<void> {
    const entries = [...this.open.values()]
    this.open.clear()
    const results = await Promise.allSettled(entries.map(async (e) => await fsClose(await e.fd)))
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason)
    // Every descriptor is closed first; then a failed close (a late write-back error) is reported.
    if (failures.length > 0) throw new AggregateError(failures, `closing ${failures.length} content file(s) failed`)
  }
}

function ignoreMissing (err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err
}
