/**
 * POSIX operations over the namespace and local contents. No FUSE here and no S3: paths in,
 * inodes, bytes and FsErrors out, so the semantics are testable without a mount.
 *
 * Permission checks are the kernel's: we mount with `default_permissions`, so the VFS checks mode
 * bits, sticky directories (may_delete) and chown/chmod rights against the attributes we report
 * before a request reaches us. What the kernel cannot know is checked here: existence, types,
 * emptiness, name length, renames into a subtree of themselves.
 *
 * Timestamps follow Linux: a change of contents updates mtime and ctime, a change of attributes or
 * links updates ctime, a change of a directory's entries updates its mtime and ctime, reads update
 * atime the `relatime` way (only when atime is not newer than mtime/ctime, or is a day old).
 */
import { fsError } from '../util/errors'
import { Namespace, NAME_MAX, type Transaction } from '../namespace/namespace'
import { type Inode, isDir, isReg, isSymlink, S_IFMT, S_IFDIR, S_IFREG, S_IFLNK, S_ISGID, ROOT_INO, lastAccessNs } from '../namespace/inode'
import { RateMeter } from '../util/rate'
import { RefCounts } from '../util/ref-counts'
import { DAY_NS, nowNs } from '../namespace/clock'
import { ContentStore } from '../content/content'
import { HS_ARCHIVED, HS_DIRTY, HS_EXISTS, HS_LOST, HS_RELEASED, hsmStateText, isReleased } from '../namespace/hsm'
import type { CacheHost } from '../content/cache'
import type { PassthroughFiles } from './passthrough'
import type { Opened } from '../fuse/ops'
import { constants as fsConstants } from 'node:fs'
import { type Name, linkAdded, linkRemoved, linkMoved, indexedPaths } from '../namespace/links'

const { O_RDONLY, O_TRUNC } = fsConstants
const O_ACCMODE = 0o3 // Linux's; not in fs.constants

/** Loads released files' content (src/content/loader.ts); absent until the daemon attaches one. */
export interface Loader {
  ensure: (inode: Inode, offset: number, length: number) => Promise<void>
  ensureAll: (inode: Inode, inOrder?: boolean) => Promise<void>
  cancel: (ino: number) => void
}

/**
 * The bounded local cache (src/content/cache.ts), absent until the daemon attaches one: room for
 * bytes that grow local content (throws ENOSPC), and the record of which files are in use.
 */
export interface Space {
  /** Bytes; undefined = unbounded. */
  readonly capacity?: number
  reserve: (bytes: number, what: string) => Promise<void>
  unreserve: (bytes: number) => void
  touch: (ino: number) => void
}

/** Who released a file's content: a user or task (hsm release), or the bounded cache. */
export type ReleasedBy = 'request' | 'cache'

/** Changed here and not (yet) in S3: a dirty file, or a regular file never exported. */
export function hasLocalChanges (inode: Inode): boolean {
  if (!isReg(inode)) return false
  const hsm = inode.hsm ?? 0
  return (hsm & HS_DIRTY) !== 0 || (hsm & HS_ARCHIVED) === 0
}

/** What releaseContent did: freed this many bytes, or why it did nothing. */
export type ReleaseOutcome = { released: number } | ReleaseRefusal
export type ReleaseRefusal = 'not-a-file' | 'already-released' | 'not-archived' | 'dirty' | 'lost' | 'busy'

/** Why a file's content may not be released now (open files aside), or undefined. */
export function releaseRefusal (inode: Inode): ReleaseRefusal | undefined {
  if (!isReg(inode)) return 'not-a-file'
  const hsm = inode.hsm ?? 0
  if ((hsm & HS_LOST) !== 0) return 'lost'
  if ((hsm & HS_RELEASED) !== 0) return 'already-released'
  if ((hsm & HS_ARCHIVED) === 0 || inode.remote?.etag === undefined) return 'not-archived'
  if ((hsm & HS_DIRTY) !== 0) return 'dirty'
  return undefined
}

/** Read-only xattr giving a file's HSM state in `lfs hsm_state`'s words. */
export const HSM_STATE_XATTR = 'user.s3link.hsm_state'

export interface Who { uid: number, gid: number }
export type TimeArg = bigint | 'now' | 'omit'

const XATTR_CREATE = 1
const XATTR_REPLACE = 2
const UNCHANGED_ID = [-1, 0xffffffff]

interface Handle {
  ino: number
  /** The path it was opened by (release gets the current one from FUSE). */
  path: string
  /** Content file descriptor, taken on first read or write. */
  fd?: Promise<number>
  /** Written through (or created by) this handle: its close is a content change. */
  wrote?: boolean
  /** Written since its content change was last queued (by a flush). */
  unqueued?: boolean
  /** Later writes go straight to the content file (offerDirectWrites). */
  writesDirect?: boolean
  /** Reads go straight to the content file: what directReads was last told (-1 = ask first). */
  readSize?: number
  /** The content fd given to directReads. */
  directFd?: number
  /** Counted as a passthrough open (./passthrough.ts): the kernel serves its reads and writes. */
  passthrough?: boolean
  /** ... and one that may write (counted in passedWriters). */
  passedWriter?: boolean
}

/** Lets the FUSE binding read and write an open file's content itself (src/fuse/native.ts). */
export interface DirectIo {
  directWrites: (fh: number, fd: number) => boolean
  directReads: (fh: number, fd: number, size: number) => boolean
}

/**
 * A change of the namespace that matters to S3 (export, src/sync/export-queue.ts), reported inside
 * the transaction that makes it, so a queued export commits atomically with the change itself.
 * atime/mtime-only changes are not reported (FSx does not export them).
 */
export type NsChange =
  | { kind: 'content', path: string } // a written file was closed, or a file was truncated
  | { kind: 'meta', path: string } // created (mkdir, symlink, mknod, link), chmod, chown
  | { kind: 'removed', path: string } // unlink, rmdir
  | { kind: 'renamed', from: string, to: string, dir: boolean }

export type ChangeListener = (tx: Transaction, change: NsChange) => Promise<void>

export class FileSystem {
  private readonly handles = new Map<number, Handle>()
  private nextFh = 1
  private loader?: Loader
  private listener?: ChangeListener
  private writerClosed?: (path: string) => void
  /** Inodes with handles that wrote: exporting them now would catch a half-written file. */
  private readonly writers = new RefCounts<number>()
  private space?: Space
  private directIo?: DirectIo
  /** Bytes written through the mount, as a recent rate (exports yield to heavy writing). */
  private readonly writes = new RateMeter()
  /** Inodes whose content file something reads outside any handle (an export's upload). */
  private readonly uploading = new RefCounts<number>()
  private releaseListener?: (bytes: number, by: ReleasedBy) => void
  private passthrough?: PassthroughFiles
  /** Open handles by inode, as the kernel sees them: gone at RELEASE (pins stay until it is done). */
  private readonly opens = new RefCounts<number>()
  private passedThroughListener?: () => void
  /** Files that passthrough opens may write, unseen: their content file's mtime as last looked at. */
  private readonly passedWriters = new Map<number, { mtimeNs: bigint, opens: number }>()
  private settler?: (inode: Inode, ahead: boolean) => Promise<void>
  private readonly settling = new Map<number, Promise<Inode>>()
  private lastLookup = 0

  constructor (readonly ns: Namespace, readonly content: ContentStore) {}

  onChange (listener: ChangeListener): void {
    this.listener = listener
  }

  /** The last handle that wrote to a file closed, after a flush had saved and reported what it wrote. */
  onWriterClosed (listener: (path: string) => void): void {
    this.writerClosed = listener
  }

  private async changed (tx: Transaction, change: NsChange): Promise<void> {
    if (this.listener !== undefined) await this.listener(tx, change)
  }

  /**
   * The inode's content or permissions changed: every name of it shows the change, so each is
   * reported (hard links export as independent objects, all updated: spec/fsx-dra.md §12.2).
   */
  private async changedInode (tx: Transaction, inode: Inode, kind: 'content' | 'meta', path?: string): Promise<void> {
    if (this.listener === undefined) return
    for (const p of await this.pathsOf(inode, path)) await this.changed(tx, { kind, path: p })
  }

  /**
   * Every current path of an inode: the one the caller knows for a file with one name, all of its
   * names for a hard-linked one (src/namespace/links.ts). Paths as committed: inside a transaction,
   * its own changes are not seen yet.
   */
  async pathsOf (inode: Inode, known?: string): Promise<string[]> {
    const paths = isDir(inode) || inode.nlink < 2 ? [] : await indexedPaths(this.ns, inode.ino)
    if (known !== undefined && !paths.includes(known)) paths.push(known)
    return paths
  }

  /**
   * Runs fn (an upload reading the content file by its path) while the file's content may not be
   * released: a release in the middle would make the upload read a short file.
   */
  async withContent<T> (ino: number, fn: () => Promise<T>): Promise<T> {
    this.uploading.add(ino)
    try {
      return await fn()
    } finally {
      this.uploading.remove(ino)
    }
  }

  /** Open, or read by an upload: its content may not be released now. */
  private inUse (ino: number): boolean {
    return this.ns.isOpen(ino) || this.uploading.has(ino)
  }

  /** Some open handle has written to the file and is not closed yet. */
  isBeingWritten (ino: number): boolean {
    return this.writers.has(ino)
  }

  private markWriter (h: Handle): void {
    h.unqueued = true
    if (h.wrote === true) return
    h.wrote = true
    this.writers.add(h.ino)
  }

  attachLoader (loader: Loader): void {
    this.loader = loader
  }

  /** Reads listed-only inodes' metadata from their objects (src/sync/listed-settler.ts). */
  attachSettler (settle: (inode: Inode, ahead: boolean) => Promise<void>): void {
    this.settler = settle
  }

  attachSpace (space: Space): void {
    this.space = space
  }

  /** Bytes per second written through the mount just now. */
  writeRate (): number {
    return this.writes.perSecond()
  }

  attachDirectIo (io: DirectIo): void {
    this.directIo = io
    // A content file cut behind its readers (truncate, a changed object, a release): their reads
    // must ask again, or the binding would read zeros where the file has no bytes any more.
    this.content.onTruncate = (ino) => {
      for (const [fh, h] of this.handles) {
        if (h.ino !== ino || h.directFd === undefined || h.readSize === -1) continue
        h.readSize = -1
        io.directReads(fh, h.directFd, -1)
      }
    }
  }

  attachPassthrough (passthrough: PassthroughFiles): void {
    this.passthrough = passthrough
    this.content.onEmptied = (ino) => {
      if (passthrough.has(ino)) void this.reloadPassedThrough(ino)
    }
  }

  /**
   * A file the kernel serves from its content file was emptied for a changed object: its open
   * descriptors read the new object as it arrives, front to back (a shorter file, never a hole),
   * as they would a local file another process rewrites. A failed load is the loader's to log;
   * the next open of the file loads it again.
   */
  private async reloadPassedThrough (ino: number): Promise<void> {
    const inode = await this.ns.get(ino).catch(() => undefined)
    if (inode !== undefined && isReleased(inode.hsm)) await this.loaderFor().ensureAll(inode, true).catch(() => undefined)
  }

  /** Told of every open the kernel serves itself (metrics). */
  onPassedThrough (listener: () => void): void {
    this.passedThroughListener = listener
  }

  /** Told of every release of content, with the bytes freed (metrics). */
  onReleased (listener: (bytes: number, by: ReleasedBy) => void): void {
    this.releaseListener = listener
  }

  /** The bounded cache's view of this file system: local bytes, and what may be released. */
  cacheHost (): CacheHost {
    return {
      localBytes: () => this.ns.localBytes(),
      localFiles: () => this.ns.localFiles(),
      candidate: async (ino) => {
        const inode = await this.ns.peek(ino)
        if (inode === undefined || releaseRefusal(inode) !== undefined || this.inUse(ino)) return undefined
        return { bytes: inode.size, lastUsedMs: lastAccessMs(inode) }
      },
      release: async (ino) => {
        // Gone since it was picked (ENOENT) is nothing to release; any other failure is the cache's to log.
        const outcome = await this.releaseContent(ino, 'cache').catch((err: unknown) => {
          if ((err as { code?: string }).code === 'ENOENT') return 'gone' as const
          throw err
        })
        return typeof outcome === 'string' ? 0 : outcome.released
      },
      countStep: async () => await this.ns.countStep(),
      changes: () => this.ns.commits
    }
  }

  private loaderFor (): Loader {
    if (this.loader === undefined) throw fsError('EIO', 'the content of this file is only in S3 and nothing can load it now')
    return this.loader
  }

  /** A released file's content is complete locally now (the loader calls this). */
  async markLoaded (ino: number, etag: string): Promise<void> {
    await this.ns.mutate(async (tx) => {
      const inode = await this.ns.get(ino)
      if (!isReleased(inode.hsm) || inode.remote?.etag !== etag) return
      inode.hsm = HS_EXISTS | HS_ARCHIVED
      tx.putInode(inode)
    })
  }

  /**
   * A released file's object is gone or changed in S3: its content cannot be loaded any more.
   * `lost_from_hsm` says so in its HSM state until an import brings the object's new state.
   */
  async markLost (ino: number): Promise<void> {
    await this.ns.mutate(async (tx) => {
      const inode = await this.ns.get(ino).catch(() => undefined)
      if (inode === undefined || !isReleased(inode.hsm) || ((inode.hsm ?? 0) & HS_LOST) !== 0) return
      inode.hsm = (inode.hsm ?? 0) | HS_LOST
      tx.putInode(inode)
    })
  }

  /**
   * `lfs hsm_release` (spec/fsx-dra.md §14.4): frees the local copy of a file whose content is in
   * S3 as it is here (`exists archived`, not dirty), keeping its metadata; the next read loads it
   * again. Open files are left alone (Lustre's release needs a lease no open file grants). The inode
   * is marked released before its content file is emptied: a crash in between leaves stale bytes
   * the next load overwrites, never a file that reads as holes. Truncated, not unlinked, so a
   * descriptor opened meanwhile sees the same file the loader fills.
   */
  async releaseContent (ino: number, by: ReleasedBy = 'request'): Promise<ReleaseOutcome> {
    const outcome = await this.content.dropping(async (drop) => await this.ns.mutate(async (tx) => {
      const inode = await this.ns.get(ino)
      const why = releaseRefusal(inode)
      if (why !== undefined) return why
      if (this.inUse(ino)) return 'busy'
      drop(ino)
      inode.hsm = HS_RELEASED | HS_EXISTS | HS_ARCHIVED
      tx.putInode(inode)
      return { bytes: inode.size }
    }, { sync: true })) // on disk before the content is emptied: a power cut must not keep the emptying alone
    if (typeof outcome === 'string') return outcome
    this.releaseListener?.(outcome.bytes, by)
    return { released: outcome.bytes }
  }

  /** Before a change of content: load a released file, and mark an archived one dirty. */
  private async beforeContentChange (inode: Inode): Promise<void> {
    if (isReleased(inode.hsm)) await this.loaderFor().ensureAll(inode)
  }

  private markDirtyContent (inode: Inode): void {
    if (((inode.hsm ?? 0) & HS_ARCHIVED) !== 0) inode.hsm = ((inode.hsm ?? 0) & ~HS_RELEASED) | HS_EXISTS | HS_DIRTY
  }

  // ---- lookup ----

  async resolve (path: string): Promise<Inode> {
    let inode = await this.ns.get(ROOT_INO)
    for (const name of components(path)) inode = await this.child(inode, name)
    return inode
  }

  private async child (dir: Inode, name: string): Promise<Inode> {
    if (!isDir(dir)) throw fsError('ENOTDIR', 'a path component is not a directory')
    const dirent = await this.ns.lookup(dir.ino, name)
    if (dirent === undefined) throw fsError('ENOENT', `no such entry: ${name}`)
    return await this.ns.get(dirent.ino)
  }

  /** The parent directory of path and the last component's name. */
  private async parentOf (path: string): Promise<{ dir: Inode, name: string }> {
    const names = components(path)
    const name = names.pop()
    if (name === undefined) throw fsError('EBUSY', 'the root directory cannot be replaced or removed')
    if (Buffer.byteLength(name) > NAME_MAX) throw fsError('ENAMETOOLONG', `name longer than ${NAME_MAX} bytes`)
    let dir = await this.ns.get(ROOT_INO)
    for (const n of names) dir = await this.child(dir, n)
    if (!isDir(dir)) throw fsError('ENOTDIR', 'parent is not a directory')
    return { dir, name }
  }

  /** What lookups and stat see. */
  async getattr (path: string): Promise<Inode> {
    this.lastLookup = performance.now()
    return await this.withPassedWrites(await this.resolveSettled(path))
  }

  /** The inode at path, a listed-only one settled first (src/sync/listed-settler.ts). */
  async resolveSettled (path: string): Promise<Inode> {
    const inode = await this.resolve(path)
    return inode.listedOnly === undefined ? inode : await this.settle(inode.ino)
  }

  /** Milliseconds since the last lookup: background work waits for a quiet file system. */
  msSinceLookup (): number {
    return performance.now() - this.lastLookup
  }

  /**
   * Reads a listed-only inode's object metadata into it, once however many ask at a time; `ahead`
   * when no lookup waits for it (the settler's own work).
   */
  async settle (ino: number, ahead = false): Promise<Inode> {
    let settling = this.settling.get(ino)
    if (settling === undefined) {
      settling = (async () => {
        const inode = await this.ns.get(ino)
        if (inode.listedOnly !== undefined && this.settler !== undefined) await this.settler(inode, ahead)
        return await this.ns.get(ino)
      })().finally(() => this.settling.delete(ino))
      this.settling.set(ino, settling)
    }
    return await settling
  }

  async fgetattr (fh: number): Promise<Inode> {
    return await this.withPassedWrites(await this.ns.get(this.handle(fh).ino))
  }

  private handle (fh: number): Handle {
    const h = this.handles.get(fh)
    if (h === undefined) throw fsError('EBADF', `no open file handle ${fh}`)
    return h
  }

  // ---- creating entries ----

  /** A new inode in dir: owner from the caller, group from a set-group-ID directory (BSD rule). */
  private addEntry (tx: Transaction, dir: Inode, name: string, who: Who, mode: number, extra: Partial<Inode> = {}): Inode {
    const inheritGid = (dir.mode & S_ISGID) !== 0
    if (isDirMode(mode) && inheritGid) mode |= S_ISGID
    const inode = tx.newInode({
      mode, uid: who.uid, gid: inheritGid ? dir.gid : who.gid, nlink: isDirMode(mode) ? 2 : 1, size: 0, rdev: 0, ...extra
    })
    if (isDirMode(mode)) { inode.parent = dir.ino; inode.name = name }
    tx.link(dir.ino, name, inode)
    if (isDirMode(mode)) dir.nlink++
    touchDir(tx, dir, inode.ctimeNs)
    return inode
  }

  private async createEntry (path: string, who: Who, mode: number, extra: Partial<Inode> = {}): Promise<Inode> {
    return await this.ns.mutate(async (tx) => {
      const { dir, name } = await this.parentOf(path)
      if (await this.ns.lookup(dir.ino, name) !== undefined) throw fsError('EEXIST', `${name} exists`)
      const inode = this.addEntry(tx, dir, name, who, mode, extra)
      // A new regular file is reported when it is closed, with its content.
      if (!isReg(inode)) await this.changed(tx, { kind: 'meta', path })
      return inode
    })
  }

  async mkdir (path: string, mode: number, who: Who): Promise<Inode> {
    return await this.createEntry(path, who, S_IFDIR | (mode & 0o7777))
  }

  async mknod (path: string, mode: number, rdev: number, who: Who): Promise<Inode> {
    if ((mode & S_IFMT) === 0) mode |= S_IFREG
    if ((mode & S_IFMT) === S_IFDIR || (mode & S_IFMT) === S_IFLNK) throw fsError('EINVAL', 'mknod cannot make directories or symlinks')
    return await this.createEntry(path, who, mode, { rdev })
  }

  async symlink (target: string, path: string, who: Who): Promise<Inode> {
    return await this.createEntry(path, who, S_IFLNK | 0o777, { target, size: Buffer.byteLength(target) })
  }

  /** create(2): a new file open for writing; its handle and its inode. */
  async createFile (path: string, mode: number, who: Who): Promise<{ fh: number, inode: Inode }> {
    const inode = await this.createEntry(path, who, S_IFREG | (mode & 0o7777))
    const fh = this.openHandle(inode, path)
    this.markWriter(this.handle(fh))
    return { fh, inode }
  }

  async readlink (path: string): Promise<string> {
    const inode = await this.resolve(path)
    if (!isSymlink(inode)) throw fsError('EINVAL', 'not a symbolic link')
    return inode.target ?? ''
  }

  // ---- open files ----

  async open (path: string, flags: number = O_RDONLY): Promise<number | Opened> {
    const inode = await this.resolve(path)
    const alone = !this.opens.has(inode.ino)
    const fh = this.openHandle(inode, path)
    if (!this.passesThrough(inode, flags, alone)) return fh
    try {
      const backing = await this.passThrough(this.handle(fh), inode, flags)
      return backing === undefined ? fh : { fh, backing }
    } catch (err) {
      await this.release(fh)
      throw err
    }
  }

  /**
   * Whether the kernel is to serve this open itself (./passthrough.ts): a read-only open of a local
   * file nothing else has open, and then every open of that file while one such is open.
   */
  private passesThrough (inode: Inode, flags: number, alone: boolean): boolean {
    const pt = this.passthrough
    if (pt === undefined || !pt.available || !isReg(inode)) return false
    if (pt.has(inode.ino)) return true
    return alone && (flags & O_ACCMODE) === O_RDONLY && (flags & O_TRUNC) === 0 && !isReleased(inode.hsm) && inode.size > 0
  }

  /** The backing id of a passthrough open, or undefined if the kernel refused (then h is as any). */
  private async passThrough (h: Handle, inode: Inode, flags: number): Promise<number | undefined> {
    h.passthrough = true
    const fd = this.contentFd(h)
    const [id] = await Promise.all([this.passthrough?.open(inode.ino, () => fd), fd])
    if (id === undefined) return undefined
    // Its content was dropped for a changed object while others had it open: this open reads the
    // content file as it is, so all of it first.
    if (isReleased(inode.hsm)) await this.loaderFor().ensureAll(inode, true)
    if ((flags & O_ACCMODE) === O_RDONLY) this.noteRead(inode)
    else await this.addPassedWriter(h, inode)
    this.passedThroughListener?.()
    return id
  }

  /**
   * A passthrough open that may write: the daemon will not see its writes, so the file counts as
   * written from now on (dirty, saved and exported at close, kept by imports meanwhile), and its size
   * and mtime are taken from the content file whenever they are asked for (takePassedWrites).
   */
  private async addPassedWriter (h: Handle, inode: Inode): Promise<void> {
    const { mtimeNs } = await this.content.stat(inode.ino)
    const w = this.passedWriters.get(inode.ino) ?? { mtimeNs, opens: 0 }
    this.passedWriters.set(inode.ino, w)
    w.opens++
    h.passedWriter = true
    this.markWriter(h)
    this.markDirtyContent(inode)
    this.ns.markDirty(inode)
  }

  /** inode, with what passthrough writers gave its content file (no await on stat's path without them). */
  private withPassedWrites (inode: Inode): Inode | Promise<Inode> {
    return this.passedWriters.has(inode.ino) ? this.takePassedWrites(inode).then(() => inode) : inode
  }

  /** What a passthrough writer handle may have written, taken; true if anything changed. */
  private async passedWritesOf (h: Handle): Promise<boolean> {
    return h.passedWriter === true && await this.takePassedWrites(await this.ns.get(h.ino))
  }

  /** Takes what passthrough writers did to the file's content file; true if anything changed. */
  private async takePassedWrites (inode: Inode): Promise<boolean> {
    const w = this.passedWriters.get(inode.ino)
    if (w === undefined) return false
    const st = await this.content.stat(inode.ino)
    const size = Number(st.size)
    const written = st.mtimeNs !== w.mtimeNs
    if (!written && size === inode.size) return false
    w.mtimeNs = st.mtimeNs
    inode.size = size
    if (written) inode.mtimeNs = inode.ctimeNs = st.mtimeNs
    this.markDirtyContent(inode)
    this.ns.markDirty(inode)
    return true
  }

  private openHandle (inode: Inode, path: string): number {
    this.space?.touch(inode.ino)
    const fh = this.nextFh++
    this.handles.set(fh, { ino: inode.ino, path })
    this.opens.add(inode.ino)
    this.ns.pin(inode.ino)
    return fh
  }

  private contentFd (h: Handle): Promise<number> {
    h.fd ??= this.content.acquire(h.ino)
    return h.fd
  }

  async read (fh: number, buf: Buffer, offset: number): Promise<number> {
    const h = this.handle(fh)
    const inode = await this.readable(h, offset, buf.length)
    if (inode.size <= offset) return 0 // no content file needed (an empty file may have none)
    const fd = await this.contentFd(h)
    const n = await this.content.read(fd, buf, offset, inode.size)
    this.offerDirectReads(fh, h, inode, fd)
    return n
  }

  /** A read on a handle given to directReads: its range made local; the binding reads it. */
  async readInPlace (fh: number, length: number, offset: number): Promise<number> {
    const h = this.handle(fh)
    const inode = await this.readable(h, offset, length)
    if (h.directFd !== undefined) this.offerDirectReads(fh, h, inode, h.directFd)
    return Math.max(0, Math.min(length, inode.size - offset))
  }

  /** The inode of a handle about to be read at [offset, offset+length): loaded there, its use noted. */
  private async readable (h: Handle, offset: number, length: number): Promise<Inode> {
    const inode = await this.ns.get(h.ino)
    if (isReleased(inode.hsm) && offset < inode.size) await this.loaderFor().ensure(inode, offset, length)
    this.noteRead(inode)
    return inode
  }

  /** A read: a use for the bounded cache, and atime the relatime way. */
  private noteRead (inode: Inode): void {
    this.space?.touch(inode.ino)
    if (relatimeDue(inode)) {
      inode.atimeNs = nowNs()
      this.ns.markDirty(inode)
    }
  }

  /**
   * After a handle's first read through here (atime done, the use noted), its reads need not cross
   * to this thread: a local file's are read by the FUSE binding alone up to its current size; a
   * loading file's still come here to wait for their range, but the binding reads the bytes.
   */
  private offerDirectReads (fh: number, h: Handle, inode: Inode, fd: number): void {
    if (this.directIo === undefined) return
    const size = isReleased(inode.hsm) ? -1 : inode.size
    if (h.readSize === size) return
    h.readSize = size
    h.directFd = fd
    this.directIo.directReads(fh, fd, size)
  }

  async write (fh: number, buf: Buffer, offset: number): Promise<number> {
    const h = this.handle(fh)
    const inode = await this.ns.get(h.ino)
    await this.beforeContentChange(inode)
    // Room for the bytes this write adds to the file, before any is written (ENOSPC otherwise:
    // the file stays as it was). Held until the new size counts in the namespace's local bytes.
    const grow = Math.max(0, offset + buf.length - inode.size)
    if (grow > 0) await this.space?.reserve(grow, `a write to inode ${h.ino}`)
    try {
      this.markWriter(h)
      const fd = await this.contentFd(h)
      const n = await this.content.write(fd, buf, offset)
      this.writes.add(n)
      inode.size = Math.max(inode.size, offset + n)
      inode.mtimeNs = inode.ctimeNs = nowNs()
      this.markDirtyContent(inode)
      this.ns.markDirty(inode)
      this.space?.touch(h.ino)
      this.offerDirectWrites(fh, h, inode, fd)
      return n
    } finally {
      if (grow > 0) this.space?.unreserve(grow)
    }
  }

  /**
   * After a handle's first write through here (the file loaded, dirty, its writer counted), its
   * later writes need not cross to this thread and back twice each: the FUSE binding pwrite()s them
   * and reports them to wroteDirect(). Not with a bounded cache, where each growing write reserves
   * room first, and only while `inode` is the cached copy that wroteDirect() updates.
   */
  private offerDirectWrites (fh: number, h: Handle, inode: Inode, fd: number): void {
    if (h.writesDirect === true || this.directIo === undefined || this.space?.capacity !== undefined) return
    if (isReleased(inode.hsm) || this.ns.cached(h.ino) !== inode) return
    h.writesDirect = this.directIo.directWrites(fh, fd)
  }

  /**
   * Writes the FUSE binding made on `fh` by itself reached `end`, the last at `mtimeNs`. Runs before
   * any request the kernel sent after those writes (getattr, flush, fsync, release), so it must
   * update the inode synchronously.
   */
  wroteDirect (fh: number, end: number, mtimeNs: bigint, bytes: number): void {
    this.writes.add(bytes)
    const h = this.handles.get(fh)
    if (h === undefined) return
    const update = (inode: Inode): void => {
      inode.size = Math.max(inode.size, end)
      inode.mtimeNs = inode.ctimeNs = mtimeNs
      this.markWriter(h)
      this.markDirtyContent(inode)
      this.ns.markDirty(inode)
      this.space?.touch(h.ino)
    }
    const inode = this.ns.cached(h.ino)
    if (inode !== undefined) update(inode)
    else {
      // Not expected (open files stay cached); later writes go through write(), which loads it.
      this.stopDirectWrites(fh, h)
      this.ns.get(h.ino).then(update, (err: unknown) => {
        process.emitWarning(`inode ${h.ino}: writes up to ${end} bytes are in its content file, but its size could not be updated: ${String(err)}`)
      })
    }
  }

  /**
   * A capacity was configured (src/content/cache.ts): from now on each growing write reserves room
   * first, so writes stop going straight to content files at once, not at each file's next note.
   */
  capacityConfigured (): void {
    for (const [fh, h] of this.handles) this.stopDirectWrites(fh, h)
  }

  private stopDirectWrites (fh: number, h: Handle): void {
    if (h.writesDirect !== true) return
    h.writesDirect = false
    this.directIo?.directWrites(fh, -1)
  }

  /**
   * close(2): what was written is saved before close returns, and so is its export. The kernel
   * sends RELEASE only after close(2) has returned (and never, if the daemon dies first), so
   * queueing the export at release alone could lose it to a kill -9 right after a close.
   */
  async flush (fh: number, path?: string): Promise<void> {
    const h = this.handle(fh)
    if (await this.passedWritesOf(h)) h.unqueued = true
    if (h.unqueued !== true) {
      await this.ns.flush([h.ino])
      return
    }
    h.unqueued = false
    await this.saveWritten(h, path)
  }

  /** A written file's saved state and its export, in one batch: a crash keeps both or neither. */
  private async saveWritten (h: Handle, path?: string): Promise<void> {
    const inode = await this.ns.get(h.ino)
    await this.ns.mutate(async (tx) => {
      tx.putInode(inode)
      if (inode.nlink > 0) await this.changedInode(tx, inode, 'content', path ?? h.path)
    })
  }

  async fsync (fh: number, dataOnly: boolean): Promise<void> {
    const h = this.handle(fh)
    if (h.fd !== undefined) await this.content.sync(h.ino, dataOnly)
    await this.passedWritesOf(h)
    await this.ns.flush([h.ino], { sync: true })
  }

  /** close(2) of the last descriptor of a handle; `path` is the file's current path (FUSE knows renames). */
  async release (fh: number, path?: string): Promise<void> {
    const h = this.handle(fh)
    this.handles.delete(fh)
    this.opens.remove(h.ino)
    this.space?.touch(h.ino) // a use, and a file closed may be releasable now
    // The handle is gone whatever fails below: unpin in any case, or the inode stays pinned forever.
    try {
      if (h.passthrough === true) await this.releasePassthrough(h)
      if (h.fd !== undefined) await this.content.release(h.ino)
      if (h.wrote !== true) await this.ns.flush([h.ino])
      else {
        this.writers.remove(h.ino)
        // Written since the last flush (mapped pages written back after close): saved and reported
        // again. Else the flush did both, and only an export held back while the file was open waits.
        if (h.unqueued === true) await this.saveWritten(h, path)
        else {
          await this.ns.flush([h.ino])
          if (!this.isBeingWritten(h.ino) && this.writerClosed !== undefined) {
            for (const p of await this.pathsOf(await this.ns.get(h.ino), path ?? h.path)) this.writerClosed(p)
          }
        }
      }
    } finally {
      if (this.ns.unpin(h.ino)) await this.reapIfUnlinked(h.ino)
    }
  }

  /** What a passthrough open leaves: writes (mapped pages may land after its flush), its backing id. */
  private async releasePassthrough (h: Handle): Promise<void> {
    if (await this.passedWritesOf(h)) h.unqueued = true
    const w = this.passedWriters.get(h.ino)
    if (h.passedWriter === true && w !== undefined && --w.opens === 0) this.passedWriters.delete(h.ino)
    await this.passthrough?.release(h.ino)
  }

  /** The last handle of a file unlinked while open is gone: now its inode and bytes can go. */
  private async reapIfUnlinked (ino: number): Promise<void> {
    const inode = await this.ns.get(ino).catch(() => undefined)
    if (inode === undefined || inode.nlink > 0 || this.ns.isOpen(ino)) return
    await this.ns.mutate(async (tx) => {
      tx.deleteInode(inode)
      await tx.deleteXattrs(ino)
    })
    await this.content.remove(ino)
  }

  /** Orphans left by a stop with files unlinked but open: deleted before the mount opens. */
  async reapOrphans (): Promise<number> {
    let n = 0
    for await (const ino of this.ns.orphans()) {
      await this.reapIfUnlinked(ino)
      n++
    }
    return n
  }

  // ---- attributes ----

  async truncate (path: string, size: number): Promise<Inode> {
    return await this.truncateInode(await this.resolve(path), size, path)
  }

  async ftruncate (fh: number, size: number): Promise<Inode> {
    return await this.truncateInode(await this.ns.get(this.handle(fh).ino), size)
  }

  private async truncateInode (inode: Inode, size: number, path?: string): Promise<Inode> {
    if (isDir(inode)) throw fsError('EISDIR', 'cannot truncate a directory')
    if (!isReg(inode)) throw fsError('EINVAL', 'can only truncate regular files')
    // Truncating a released file to zero needs none of its content (the common O_TRUNC case).
    if (size === 0 && isReleased(inode.hsm)) this.loader?.cancel(inode.ino)
    else await this.beforeContentChange(inode)
    // A file that grows takes room in the cache like a write (logical size: see localBytes).
    const grow = isReleased(inode.hsm) ? 0 : Math.max(0, size - inode.size)
    if (grow > 0) await this.space?.reserve(grow, `a truncate of inode ${inode.ino}`)
    try {
      await this.content.truncate(inode.ino, size)
      await this.ns.mutate(async (tx) => {
        inode.size = size
        inode.mtimeNs = inode.ctimeNs = nowNs()
        this.markDirtyContent(inode)
        tx.putInode(inode)
        // Through a handle, the close reports it; by path (truncate(1)) nothing else will.
        if (path !== undefined && !this.isBeingWritten(inode.ino)) await this.changedInode(tx, inode, 'content', path)
      })
      return inode
    } finally {
      if (grow > 0) this.space?.unreserve(grow)
    }
  }

  async chmod (path: string, mode: number): Promise<Inode> {
    return await this.setattr(path, (inode) => { inode.mode = (inode.mode & S_IFMT) | (mode & 0o7777) }, true)
  }

  async chown (path: string, uid: number, gid: number): Promise<Inode> {
    return await this.setattr(path, (inode) => {
      if (!UNCHANGED_ID.includes(uid)) inode.uid = uid
      if (!UNCHANGED_ID.includes(gid)) inode.gid = gid
    }, true)
  }

  async utimens (path: string, atime: TimeArg, mtime: TimeArg): Promise<Inode> {
    return await this.setattr(path, (inode, now) => {
      if (atime !== 'omit') inode.atimeNs = atime === 'now' ? now : atime
      if (mtime !== 'omit') inode.mtimeNs = mtime === 'now' ? now : mtime
    })
  }

  /** Changes attributes of the inode at path and sets its ctime, as every attribute change does. */
  private async setattr (path: string, change: (inode: Inode, now: bigint) => void, exported = false): Promise<Inode> {
    return await this.ns.mutate(async (tx) => {
      const inode = await this.resolve(path)
      const now = nowNs()
      change(inode, now)
      inode.ctimeNs = now
      tx.putInode(inode)
      if (exported) await this.changedInode(tx, inode, 'meta', path)
      return inode
    })
  }

  // ---- removing and moving entries ----

  async unlink (path: string): Promise<void> {
    const gone = await this.ns.mutate(async (tx) => {
      const { dir, name } = await this.parentOf(path)
      const inode = await this.child(dir, name)
      if (isDir(inode)) throw fsError('EISDIR', `${name} is a directory`)
      tx.unlink(dir.ino, name)
      touchDir(tx, dir, nowNs())
      await this.keepRemote(tx, inode, path)
      const gone = await this.dropLink(tx, inode, { parent: dir.ino, name })
      await this.changed(tx, { kind: 'removed', path })
      return gone
    })
    if (gone !== undefined) await this.content.remove(gone)
  }

  /**
   * Automatic import of a deletion in S3: removes the entry at path only if it still is what was
   * imported (a file or symlink with that ETag and no local changes, or an empty directory that
   * came from S3). Anything else is kept: local changes are never destroyed by an import.
   */
  async removeImported (path: string, etag: string | undefined): Promise<'removed' | 'kept' | 'missing'> {
    let gone: number | undefined
    const result = await this.ns.mutate(async (tx): Promise<'removed' | 'kept' | 'missing'> => {
      const { dir, name } = await this.parentOf(path)
      const dirent = await this.ns.lookup(dir.ino, name)
      if (dirent === undefined) return 'missing'
      const inode = await this.ns.get(dirent.ino)
      if (isDir(inode)) {
        if (inode.remote === undefined || !(await this.ns.isEmptyDir(inode.ino))) return 'kept'
        tx.unlink(dir.ino, name)
        dir.nlink--
        touchDir(tx, dir, nowNs())
        await this.dropLink(tx, inode, { parent: dir.ino, name })
        return 'removed'
      }
      if (inode.remote === undefined || (etag !== undefined && inode.remote.etag !== etag) || hasLocalChanges(inode)) return 'kept'
      tx.unlink(dir.ino, name)
      touchDir(tx, dir, nowNs())
      await this.keepRemote(tx, inode, path)
      gone = await this.dropLink(tx, inode, { parent: dir.ino, name })
      return 'removed'
    })
    this.loader?.cancel(gone ?? -1)
    if (gone !== undefined) await this.content.remove(gone)
    return result
  }

  /**
   * A name of a hard-linked file goes while others stay: the file's object in S3 (remote.key, what a
   * release loads from and metadata-only exports copy) may be this name's, which is about to be
   * deleted. Its other names are exported first (queued before the deletion, which waits for earlier
   * puts), so the file's object is one of theirs by then. Called before the name is dropped.
   */
  private async keepRemote (tx: Transaction, inode: Inode, gone: string): Promise<void> {
    if (isDir(inode) || inode.nlink < 2 || inode.remote === undefined) return
    for (const p of await this.pathsOf(inode)) if (p !== gone) await this.changed(tx, { kind: 'meta', path: p })
  }

  /**
   * One name of inode is gone. Returns the inode number whose content file must be deleted after
   * the commit, if this was the last name and nobody has it open.
   */
  private async dropLink (tx: Transaction, inode: Inode, gone: Name): Promise<number | undefined> {
    await linkRemoved(tx, this.ns.store, inode, gone)
    inode.nlink = isDir(inode) ? 0 : inode.nlink - 1
    inode.ctimeNs = nowNs()
    if (inode.nlink > 0) { tx.putInode(inode); return undefined }
    if (this.ns.isOpen(inode.ino)) {
      tx.putInode(inode)
      tx.markOrphan(inode.ino)
      return undefined
    }
    tx.deleteInode(inode)
    await tx.deleteXattrs(inode.ino)
    return isReg(inode) ? inode.ino : undefined
  }

  async rmdir (path: string): Promise<void> {
    await this.ns.mutate(async (tx) => {
      const { dir, name } = await this.parentOf(path)
      const inode = await this.child(dir, name)
      if (!isDir(inode)) throw fsError('ENOTDIR', `${name} is not a directory`)
      if (!await this.ns.isEmptyDir(inode.ino)) throw fsError('ENOTEMPTY', `${name} is not empty`)
      tx.unlink(dir.ino, name)
      dir.nlink--
      touchDir(tx, dir, nowNs())
      await this.changed(tx, { kind: 'removed', path })
      await this.dropLink(tx, inode, { parent: dir.ino, name })
    })
  }

  async link (existing: string, path: string): Promise<Inode> {
    return await this.ns.mutate(async (tx) => {
      const src = await this.parentOf(existing)
      const inode = await this.child(src.dir, src.name)
      if (isDir(inode)) throw fsError('EPERM', 'hard links to directories are not allowed')
      const { dir, name } = await this.parentOf(path)
      if (await this.ns.lookup(dir.ino, name) !== undefined) throw fsError('EEXIST', `${name} exists`)
      tx.link(dir.ino, name, inode)
      const now = nowNs()
      inode.nlink++
      linkAdded(tx, inode, { parent: src.dir.ino, name: src.name }, { parent: dir.ino, name })
      inode.ctimeNs = now
      tx.putInode(inode)
      touchDir(tx, dir, now)
      await this.changed(tx, { kind: 'meta', path })
      return inode
    })
  }

  /** rename(2): atomic, replaces an existing target of a compatible type. */
  async rename (from: string, to: string): Promise<void> {
    const gone = await this.ns.mutate(async (tx) => {
      const src = await this.parentOf(from)
      const dst = await this.parentOf(to)
      if (dst.dir.ino === src.dir.ino) dst.dir = src.dir // one object, so nlink and times add up
      const inode = await this.child(src.dir, src.name)
      const existing = await this.ns.lookup(dst.dir.ino, dst.name)
      if (existing?.ino === inode.ino) return undefined // two names of one file: nothing to do
      if (isDir(inode) && await this.isAncestor(inode, dst.dir)) {
        throw fsError('EINVAL', 'cannot move a directory into itself')
      }
      const now = nowNs()
      let drop: number | undefined
      if (existing !== undefined) {
        const target = await this.ns.get(existing.ino)
        if (isDir(inode) && !isDir(target)) throw fsError('ENOTDIR', `${dst.name} is not a directory`)
        if (!isDir(inode) && isDir(target)) throw fsError('EISDIR', `${dst.name} is a directory`)
        if (isDir(target)) {
          if (!await this.ns.isEmptyDir(target.ino)) throw fsError('ENOTEMPTY', `${dst.name} is not empty`)
          dst.dir.nlink--
        }
        await this.keepRemote(tx, target, to)
        drop = await this.dropLink(tx, target, { parent: dst.dir.ino, name: dst.name })
      }
      tx.unlink(src.dir.ino, src.name)
      tx.link(dst.dir.ino, dst.name, inode)
      if (isDir(inode) && src.dir.ino !== dst.dir.ino) {
        src.dir.nlink--
        dst.dir.nlink++
        inode.parent = dst.dir.ino
      }
      if (isDir(inode)) inode.name = dst.name
      else linkMoved(tx, inode, { parent: src.dir.ino, name: src.name }, { parent: dst.dir.ino, name: dst.name })
      inode.ctimeNs = now
      tx.putInode(inode)
      touchDir(tx, src.dir, now)
      touchDir(tx, dst.dir, now)
      await this.changed(tx, { kind: 'renamed', from, to, dir: isDir(inode) })
      return drop
    })
    if (gone !== undefined) await this.content.remove(gone)
  }

  /** Whether dir is of, or one of its ancestors (walking up the parent links of directories). */
  private async isAncestor (dir: Inode, of: Inode): Promise<boolean> {
    let d = of
    while (true) {
      if (d.ino === dir.ino) return true
      if (d.parent === undefined || d.ino === ROOT_INO) return false
      d = await this.ns.get(d.parent)
    }
  }

  // ---- directories ----

  async readdir (path: string): Promise<Array<{ name: string, ino: number, type: number }>> {
    const dir = await this.resolve(path)
    if (!isDir(dir)) throw fsError('ENOTDIR', 'not a directory')
    const entries: Array<{ name: string, ino: number, type: number }> = []
    for await (const e of this.ns.list(dir.ino)) entries.push(e)
    return entries
  }

  // ---- extended attributes ----

  async setxattr (path: string, name: string, value: Buffer, flags: number): Promise<void> {
    checkXattrName(name)
    await this.ns.mutate(async (tx) => {
      const inode = await this.resolve(path)
      const exists = await this.ns.getXattr(inode.ino, name) !== undefined
      if ((flags & XATTR_CREATE) !== 0 && exists) throw fsError('EEXIST', `attribute ${name} exists`)
      if ((flags & XATTR_REPLACE) !== 0 && !exists) throw fsError('ENODATA', `no attribute ${name}`)
      tx.setXattr(inode.ino, name, value)
      inode.ctimeNs = nowNs()
      tx.putInode(inode)
    })
  }

  async getxattr (path: string, name: string): Promise<Buffer> {
    const inode = await this.resolve(path)
    if (name === HSM_STATE_XATTR) return Buffer.from(hsmStateText(inode.hsm ?? 0))
    const value = await this.ns.getXattr(inode.ino, name)
    if (value === undefined) throw fsError('ENODATA', `no attribute ${name}`)
    return value
  }

  async listxattr (path: string): Promise<string[]> {
    return await this.ns.listXattrs((await this.resolve(path)).ino)
  }

  async removexattr (path: string, name: string): Promise<void> {
    checkXattrName(name)
    await this.ns.mutate(async (tx) => {
      const inode = await this.resolve(path)
      if (await this.ns.getXattr(inode.ino, name) === undefined) throw fsError('ENODATA', `no attribute ${name}`)
      tx.setXattr(inode.ino, name, null)
      inode.ctimeNs = nowNs()
      tx.putInode(inode)
    })
  }

  /** Saves all in-memory changes and closes contents (shutdown). */
  async close (): Promise<void> {
    await this.ns.flush()
    await this.content.close()
  }
}

function components (path: string): string[] {
  return path.split('/').filter((c) => c !== '')
}

const isDirMode = (mode: number): boolean => (mode & S_IFMT) === S_IFDIR

function touchDir (tx: Transaction, dir: Inode, now: bigint): void {
  dir.mtimeNs = dir.ctimeNs = now
  tx.putInode(dir)
}

/** lastAccessNs in ms. */
export function lastAccessMs (inode: Inode): number {
  return Number(lastAccessNs(inode) / 1_000_000n)
}

function relatimeDue (inode: Inode): boolean {
  return inode.atimeNs <= inode.mtimeNs || inode.atimeNs <= inode.ctimeNs || nowNs() - inode.atimeNs >= DAY_NS
}

/** Only the user namespace is stored; the others belong to the kernel or to security modules. */
function checkXattrName (name: string): void {
  if (!name.startsWith('user.')) throw fsError('EOPNOTSUPP', `only user.* extended attributes are supported, not ${name}`)
}

