/**
 * Open files the kernel serves itself from their content files (FUSE passthrough, Linux 6.9+; see
 * "Passthrough" in native/fuse/s3link_fuse.c): their reads and writes never reach the daemon, and
 * the content file's page cache serves them as it serves local files.
 *
 * The kernel's rule, kept here: while a file has a passthrough open, each further open of it must
 * pass through with the same backing id (else it fails with EIO), and a passthrough open fails
 * while the file has other opens. So the first open of a file decides (FileSystem.open), and its
 * backing id is shared, counted and dropped with the last of them. The id is reserved before it
 * exists (a promise): an open deciding meanwhile sees the file as passed through and waits for it.
 */
import { getSystemErrorName } from 'node:util'

/** The binding's backing ids (src/fuse/native.ts). */
export interface BackingIo {
  openBacking: (fd: number) => number
  closeBacking: (id: number) => number
}

interface Shared {
  id: Promise<number | undefined>
  opens: number
}

/** Errors that say the kernel will never pass this mount's files through. */
const UNAVAILABLE = new Set(['EPERM', 'ENOTTY', 'ELOOP', 'EINVAL', 'EOPNOTSUPP', 'ENOSYS'])

export class PassthroughFiles {
  private readonly byIno = new Map<number, Shared>()
  private unavailable = false

  constructor (private readonly io: BackingIo, private readonly warn: (message: string) => void) {}

  /** Whether the kernel may pass files through (false after it refused for good). */
  get available (): boolean {
    return !this.unavailable
  }

  /** Some open of ino passes through (or is deciding to): every other open must too. */
  has (ino: number): boolean {
    return this.byIno.has(ino)
  }

  /**
   * One more passthrough open of ino, whose content file `fd` opens: resolves to the backing id,
   * or undefined if the kernel refused (then the open goes through the daemon, as do the others
   * waiting on this id). Counted either way: each call needs its `release`.
   */
  open (ino: number, fd: () => Promise<number>): Promise<number | undefined> {
    let shared = this.byIno.get(ino)
    if (shared === undefined) {
      shared = { id: fd().then((d) => this.backing(d)), opens: 0 }
      this.byIno.set(ino, shared)
    }
    shared.opens++
    return shared.id
  }

  /** A passthrough open of ino was released (the kernel let go of it before telling us). */
  async release (ino: number): Promise<void> {
    const shared = this.byIno.get(ino)
    if (shared === undefined || --shared.opens > 0) return
    this.byIno.delete(ino)
    const id = await shared.id.catch(() => undefined)
    if (id === undefined) return
    const res = this.io.closeBacking(id)
    if (res < 0) this.warn(`cannot drop the kernel's backing file ${id} of inode ${ino}: ${getSystemErrorName(res)}`)
  }

  private backing (fd: number): number | undefined {
    if (this.unavailable) return undefined
    const id = this.io.openBacking(fd)
    if (id > 0) return id
    const code = getSystemErrorName(id)
    if (UNAVAILABLE.has(code)) {
      this.unavailable = true
      this.warn(`the kernel does not pass reads and writes through to local files here (${code}): they go through the daemon`)
    } else {
      this.warn(`cannot pass a file through the kernel (${code}): it is read through the daemon`)
    }
    return undefined
  }
}
