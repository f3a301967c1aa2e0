/**
 * Listed-only entries (a batch import's files, src/sync/batch-import.ts) become whole: their
 * object's HEAD gives the POSIX metadata and tells a symlink's object from a file's (a GET then
 * reads the target); src/fs/import-entries.ts applies it as an import would have.
 *
 *  - On demand: FileSystem.getattr settles an entry before answering, and the kernel looks every
 *    name up before it uses it, so no one sees the defaults of an entry whose object says otherwise.
 *    An S3 failure then is EIO for that lookup, and the next lookup tries again. The entry's
 *    listed-only siblings are settled too, SIBLINGS_IN_FLIGHT at a time: `ls -l` stats one name
 *    after the other, and would otherwise wait for one HEAD after the other.
 *  - In the background: after each batch import, and at start-up for what a restart left, every
 *    listed-only entry is settled, IN_FLIGHT at a time, so later lookups cost nothing. It waits
 *    while the file system is looked up (its HEADs made every lookup 3× slower on a 2-CPU host):
 *    the user's work comes first. Entries that failed are tried again RETRY_MS later.
 */
import type { Logger } from 'winston'
import type { FileSystem } from '../fs/filesystem'
import { type Inode, S_IFREG } from '../namespace/inode'
import type { S3Clients } from '../repo/s3-clients'
import { type ImportItem, settleListed } from '../fs/import-entries'
import { describeS3Error, s3ErrorCode } from '../repo/objects'
import { headedItem } from './object-items'
import { fsError } from '../util/errors'
import { mapLimit } from '../util/pool'

const IN_FLIGHT = 2
const SIBLINGS_IN_FLIGHT = 16
/** Inode numbers read from the index at a time. */
const CHUNK = 1000
const RETRY_MS = 60_000
/** The background waits until no lookup came for this long. */
const QUIET_MS = 250

export interface ListedSettlerOptions {
  filesystem: FileSystem
  clients: S3Clients
  log: Logger
}

export class ListedSettler {
  private running?: Promise<void>
  private again = false
  private retry?: NodeJS.Timeout
  private closed = false
  /** Aborts the HEADs in flight at close: a silent server must not hold the daemon's stop. */
  private readonly abort = new AbortController()
  /** Directories whose listed-only entries are being settled on demand. */
  private readonly prefetching = new Set<number>()

  constructor (private readonly o: ListedSettlerOptions) {}

  /** A lookup found a listed-only entry: settles it, and its listed-only siblings behind it. */
  async onLookup (inode: Inode): Promise<void> {
    const parent = inode.listedOnly?.parent
    if (parent !== undefined && !this.prefetching.has(parent) && !this.closed) {
      this.prefetching.add(parent)
      this.settleSiblings(parent, inode.ino).catch((err: unknown) => {
        this.o.log.debug('settling the entries of a directory stopped', { dir: parent, error: (err as Error).message })
      }).finally(() => this.prefetching.delete(parent))
    }
    await this.settle(inode)
  }

  private async settleSiblings (dir: number, except: number): Promise<void> {
    const inos: number[] = []
    for await (const e of this.o.filesystem.ns.list(dir)) {
      if (e.ino !== except && (e.type === 0 || e.type === S_IFREG) && (await this.o.filesystem.ns.peek(e.ino))?.listedOnly !== undefined) inos.push(e.ino)
    }
    // Each lookup reports its own failure; these are only ahead of them.
    await mapLimit(inos, SIBLINGS_IN_FLIGHT, async (ino) => { if (!this.closed) await this.o.filesystem.settle(ino, true).catch(() => undefined) })
  }

  /** Reads the object of a listed-only inode and settles the entry; EIO if S3 cannot tell. */
  async settle (inode: Inode): Promise<void> {
    const remote = inode.remote
    if (remote === undefined) throw fsError('EIO', `inode ${inode.ino} is listed-only but records no object`)
    const where = `s3://${remote.bucket}/${remote.key}`
    let found: ImportItem | 'gone'
    try {
      const { client } = await this.o.clients.forBucket(remote.bucket)
      found = await headedItem(client, { dra: remote.dra, bucket: remote.bucket, components: [] }, remote.key, this.abort.signal)
    } catch (err) {
      if (s3ErrorCode(err) !== 'S3ObjectNotFound') throw fsError('EIO', `cannot read the metadata of ${where}: ${describeS3Error(err)}`)
      this.o.log.warn('an imported object is gone from S3: its entry keeps the defaults', { key: remote.key, bucket: remote.bucket })
      found = 'gone'
    }
    await settleListed(this.o.filesystem.ns, this.o.filesystem.content, inode.ino, found)
  }

  /** Settles every listed-only entry in the background (again, if a pass is running). */
  kick (): void {
    if (this.closed) return
    if (this.running !== undefined) { this.again = true; return }
    clearTimeout(this.retry)
    this.running = this.passes().finally(() => { this.running = undefined })
  }

  async close (): Promise<void> {
    this.closed = true
    this.abort.abort()
    clearTimeout(this.retry)
    await this.running
  }

  private async passes (): Promise<void> {
    do {
      this.again = false
      const { settled, failed, error } = await this.pass()
      if (failed > 0) {
        this.o.log.warn('the metadata of some imported objects could not be read: tried again later', { settled, failed, error, retryInMs: RETRY_MS })
        if (!this.closed) this.retry = setTimeout(() => this.kick(), RETRY_MS)
      } else if (settled > 0) {
        this.o.log.info('imported objects settled', { settled })
      }
    } while (this.again && !this.closed)
  }

  private async quiet (): Promise<void> {
    for (let wait; !this.closed && (wait = QUIET_MS - this.o.filesystem.msSinceLookup()) > 0;) {
      await new Promise((resolve) => setTimeout(resolve, wait))
    }
  }

  private async pass (): Promise<{ settled: number, failed: number, error?: string }> {
    let settled = 0
    let failed = 0
    let error: string | undefined
    let after: number | undefined
    while (!this.closed) {
      const chunk: number[] = []
      for await (const ino of this.o.filesystem.ns.listedInodes(after)) {
        chunk.push(ino)
        if (chunk.length === CHUNK) break
      }
      if (chunk.length === 0) break
      after = chunk[chunk.length - 1]
      await mapLimit(chunk, IN_FLIGHT, async (ino) => {
        await this.quiet()
        if (this.closed) return
        try {
          await this.o.filesystem.settle(ino, true)
          settled++
        } catch (err) {
          if ((err as { code?: string }).code === 'ENOENT') return // removed meanwhile
          failed++
          error ??= (err as Error).message
        }
      })
    }
    return { settled, failed, error }
  }
}
