/**
 * The contract between the native FUSE binding (native/fuse/, loaded by ./native.ts) and the
 * file-system adapter (./adapter.ts).
 *
 * The binding runs libfuse 2's multi-threaded loop on its own threads; each kernel request is handed
 * to the Node event loop, where exactly one handler below is called. The handler answers through its
 * `reply` callback, once: `reply(0, value)` on success, `reply(-errno)` on failure. The libfuse thread
 * waits for that answer, so a handler must never block the event loop (no sync fs calls) and must
 * always reply. `path` is null for operations on an open file that has been unlinked (we mount with
 * libfuse's `nullpath_ok`), which is why every per-file operation also receives the file handle `fh`.
 */

/** Who asked: fuse_get_context() of the request. */
export interface Caller {
  uid: number
  gid: number
  pid: number
}

/** A time as utimensat(2) gives it: nanoseconds since the epoch, or one of its two special values. */
export type TimeSpec = bigint | 'now' | 'omit'

/** What getattr returns: `struct stat` with nanosecond times. */
export interface Attr {
  ino: number
  mode: number
  nlink: number
  uid: number
  gid: number
  rdev: number
  size: number
  blocks: number
  atimeNs: bigint
  mtimeNs: bigint
  ctimeNs: bigint
}

export interface StatFs {
  bsize: number
  frsize: number
  blocks: number
  bfree: number
  bavail: number
  files: number
  ffree: number
  favail: number
  namemax: number
}

export interface DirEntry {
  name: string
  attr?: Attr
}

/** errno is 0 or a negative errno. */
export type Reply<T = void> = (errno: number, value?: T) => void

/** What create may reply: the handle, and the new file's attributes (see FuseOps). */
export interface Created { fh: number, attr?: Attr }

/** What open may reply: the handle, and a backing id from `FuseMount.openBacking` to pass it through. */
export interface Opened { fh: number, backing: number }

/**
 * Operations that change an entry (mknod, mkdir, symlink, link, chmod, chown, truncate, ftruncate,
 * utimens, create) may reply with its attributes afterwards: libfuse asks for them next, on the same
 * thread, and the binding answers that GETATTR with them instead of asking again.
 */
export interface FuseOps {
  getattr(path: string, caller: Caller, reply: Reply<Attr>): void
  fgetattr(path: string | null, fh: number, caller: Caller, reply: Reply<Attr>): void
  access(path: string, mask: number, caller: Caller, reply: Reply): void
  readlink(path: string, caller: Caller, reply: Reply<string>): void
  mknod(path: string, mode: number, rdev: number, caller: Caller, reply: Reply<Attr | undefined>): void
  mkdir(path: string, mode: number, caller: Caller, reply: Reply<Attr | undefined>): void
  unlink(path: string, caller: Caller, reply: Reply): void
  rmdir(path: string, caller: Caller, reply: Reply): void
  symlink(target: string, path: string, caller: Caller, reply: Reply<Attr | undefined>): void
  rename(from: string, to: string, caller: Caller, reply: Reply): void
  link(existing: string, path: string, caller: Caller, reply: Reply<Attr | undefined>): void
  chmod(path: string, mode: number, caller: Caller, reply: Reply<Attr | undefined>): void
  /** uid or gid is -1 when that one is not to change. */
  chown(path: string, uid: number, gid: number, caller: Caller, reply: Reply<Attr | undefined>): void
  truncate(path: string, size: number, caller: Caller, reply: Reply<Attr | undefined>): void
  ftruncate(path: string | null, fh: number, size: number, caller: Caller, reply: Reply<Attr | undefined>): void
  utimens(path: string, atime: TimeSpec, mtime: TimeSpec, caller: Caller, reply: Reply<Attr | undefined>): void
  /** Replies with a file handle (a positive integer) that later calls receive as `fh`. */
  open(path: string, flags: number, caller: Caller, reply: Reply<number | Opened>): void
  create(path: string, mode: number, flags: number, caller: Caller, reply: Reply<number | Created>): void
  /**
   * Fill `buf` (its length is the size asked for) and reply with the byte count; 0 at end of file.
   * On a handle given to `FuseMount.directReads`, `buf` is the size asked for: make the bytes be in
   * the content file and reply with the count; the binding reads them from there.
   */
  read(path: string | null, fh: number, buf: Buffer | number, offset: number, caller: Caller, reply: Reply<number>): void
  /** `buf` is only valid until reply is called: copy it if kept. Reply with the byte count written. */
  write(path: string | null, fh: number, buf: Buffer, offset: number, caller: Caller, reply: Reply<number>): void
  /**
   * Not a request: writes the binding made itself on `fh` (see `FuseMount.directWrites`), `bytes`
   * in all, reached `end` at wall-clock time `mtimeNs`. Called before any request the kernel sent
   * after them.
   */
  wrote?(fh: number, end: number, mtimeNs: bigint, bytes: number): void
  flush(path: string | null, fh: number, caller: Caller, reply: Reply): void
  release(path: string | null, fh: number, caller: Caller, reply: Reply): void
  fsync(path: string | null, fh: number, datasync: boolean, caller: Caller, reply: Reply): void
  opendir(path: string, flags: number, caller: Caller, reply: Reply<number>): void
  /** All entries at once, without `.` and `..` (the binding adds them). */
  readdir(path: string, fh: number, caller: Caller, reply: Reply<DirEntry[]>): void
  releasedir(path: string | null, fh: number, caller: Caller, reply: Reply): void
  fsyncdir(path: string | null, fh: number, datasync: boolean, caller: Caller, reply: Reply): void
  statfs(path: string, caller: Caller, reply: Reply<StatFs>): void
  /** flags: XATTR_CREATE (1) or XATTR_REPLACE (2) or 0. */
  setxattr(path: string, name: string, value: Buffer, flags: number, caller: Caller, reply: Reply): void
  /** Reply with the whole value; the binding answers size probes and ERANGE itself. */
  getxattr(path: string, name: string, caller: Caller, reply: Reply<Buffer>): void
  /** Reply with the names; the binding answers size probes and ERANGE itself. */
  listxattr(path: string, caller: Caller, reply: Reply<string[]>): void
  removexattr(path: string, name: string, caller: Caller, reply: Reply): void
}

export interface MountOptions {
  /** libfuse `-o` options, e.g. ['big_writes', 'use_ino', 'default_permissions']. */
  options: string[]
  /** Milliseconds after which a request still unanswered gets -ETIMEDOUT (and a later reply is ignored). */
  timeoutMs: number
  /**
   * The mount's readahead in KiB (0 or absent: the kernel's). libfuse 2 can only lower it, so it
   * is written to the mount's bdi in sysfs after mounting.
   */
  readAheadKiB?: number
}
