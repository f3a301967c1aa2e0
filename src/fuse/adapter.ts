/**
 * The thin FUSE adapter: each kernel request becomes one FileSystem call. Every operation goes
 * through `answer()` once: await the call, turn the result into the reply, turn any error into its
 * errno (util/errors.ts decides which), log unexpected ones. Nothing here throws into native code.
 */
import type { Logger } from 'winston'
import type { FileSystem } from '../fs/filesystem'
import type { Inode } from '../namespace/inode'
import { isDir } from '../namespace/inode'
import { errnoOf, FsError } from '../util/errors'
import type { Attr, FuseOps, Reply, StatFs } from './ops'
import fs from 'node:fs'

const BLOCK = 4096

/**
 * The attributes a change replies with, for the GETATTR libfuse sends right after it (ops.ts); none
 * for a listed-only entry, whose GETATTR reads its metadata first.
 */
const after = (inode: Inode): Attr | undefined => inode.listedOnly === undefined ? toAttr(inode) : undefined

export function toAttr (inode: Inode): Attr {
  const size = isDir(inode) ? BLOCK : inode.size
  return {
    ino: inode.ino,
    mode: inode.mode,
    nlink: inode.nlink,
    uid: inode.uid,
    gid: inode.gid,
    rdev: inode.rdev,
    size,
    blocks: Math.ceil(size / 512),
    atimeNs: inode.atimeNs,
    mtimeNs: inode.mtimeNs,
    ctimeNs: inode.ctimeNs
  }
}

/** The bounded cache as df shows it (src/content/cache.ts): capacity undefined = unbounded. */
export interface CacheUse {
  readonly capacity: number | undefined
  used: () => number
}

export function fuseOps (fsOp: FileSystem, dataDir: string, log: Logger, cache?: CacheUse): FuseOps {
  function answer<T, R> (op: string, reply: Reply<R>, work: Promise<T>, convert?: (value: T) => R): void {
    work.then(
      (value) => reply(0, convert?.(value)),
      (err: unknown) => {
        if (err instanceof FsError) log.debug(`${op}: ${err.message}`)
        else log.error(`${op} failed`, { op, error: String(err), stack: (err as Error)?.stack })
        reply(errnoOf(err))
      }
    )
  }

  return {
    getattr: (path, _c, reply) => answer('getattr', reply, fsOp.getattr(path), toAttr),
    fgetattr: (path, fh, _c, reply) => answer('fgetattr', reply, fsOp.fgetattr(fh), toAttr),
    // default_permissions: the kernel checks access(2) itself; we only confirm the path exists.
    access: (path, _mask, _c, reply) => answer('access', reply, fsOp.resolve(path)),
    readlink: (path, _c, reply) => answer('readlink', reply, fsOp.readlink(path), (t) => t),
    mknod: (path, mode, rdev, c, reply) => answer('mknod', reply, fsOp.mknod(path, mode, rdev, c), after),
    mkdir: (path, mode, c, reply) => answer('mkdir', reply, fsOp.mkdir(path, mode, c), after),
    unlink: (path, _c, reply) => answer('unlink', reply, fsOp.unlink(path)),
    rmdir: (path, _c, reply) => answer('rmdir', reply, fsOp.rmdir(path)),
    symlink: (target, path, c, reply) => answer('symlink', reply, fsOp.symlink(target, path, c), after),
    rename: (from, to, _c, reply) => answer('rename', reply, fsOp.rename(from, to)),
    link: (existing, path, _c, reply) => answer('link', reply, fsOp.link(existing, path), after),
    chmod: (path, mode, _c, reply) => answer('chmod', reply, fsOp.chmod(path, mode), after),
    chown: (path, uid, gid, _c, reply) => answer('chown', reply, fsOp.chown(path, uid, gid), after),
    truncate: (path, size, _c, reply) => answer('truncate', reply, fsOp.truncate(path, size), after),
    ftruncate: (_p, fh, size, _c, reply) => answer('ftruncate', reply, fsOp.ftruncate(fh, size), after),
    utimens: (path, atime, mtime, _c, reply) => answer('utimens', reply, fsOp.utimens(path, atime, mtime), after),
    open: (path, flags, _c, reply) => answer('open', reply, fsOp.open(path, flags), (opened) => opened),
    create: (path, mode, _flags, c, reply) => answer('create', reply, fsOp.createFile(path, mode, c), ({ fh, inode }) => ({ fh, attr: after(inode) })),
    read: (_p, fh, buf, offset, _c, reply) =>
      answer('read', reply, typeof buf === 'number' ? fsOp.readInPlace(fh, buf, offset) : fsOp.read(fh, buf, offset), (n) => n),
    write: (_p, fh, buf, offset, _c, reply) => answer('write', reply, fsOp.write(fh, buf, offset), (n) => n),
    wrote: (fh, end, mtimeNs, bytes) => fsOp.wroteDirect(fh, end, mtimeNs, bytes),
    flush: (path, fh, _c, reply) => answer('flush', reply, fsOp.flush(fh, path ?? undefined)),
    release: (path, fh, _c, reply) => answer('release', reply, fsOp.release(fh, path ?? undefined)),
    fsync: (_p, fh, datasync, _c, reply) => answer('fsync', reply, fsOp.fsync(fh, datasync)),
    opendir: (path, _flags, _c, reply) => answer('opendir', reply, fsOp.resolve(path), () => 0),
    readdir: (path, _fh, _c, reply) => answer('readdir', reply, fsOp.readdir(path), (entries) =>
      entries.map((e) => ({ name: e.name, attr: { ...EMPTY_ATTR, ino: e.ino, mode: e.type } }))),
    releasedir: (_p, _fh, _c, reply) => reply(0),
    fsyncdir: (_p, _fh, _d, _c, reply) => answer('fsyncdir', reply, fsOp.ns.flush(undefined, { sync: true })),
    statfs: (_path, _c, reply) => answer('statfs', reply, statfs(dataDir, cache), (s) => s),
    setxattr: (path, name, value, flags, _c, reply) => answer('setxattr', reply, fsOp.setxattr(path, name, Buffer.from(value), flags)),
    getxattr: (path, name, _c, reply) => answer('getxattr', reply, fsOp.getxattr(path, name), (v) => v),
    listxattr: (path, _c, reply) => answer('listxattr', reply, fsOp.listxattr(path), (names) => names),
    removexattr: (path, name, _c, reply) => answer('removexattr', reply, fsOp.removexattr(path, name))
  }
}

const EMPTY_ATTR: Attr = {
  ino: 0, mode: 0, nlink: 0, uid: 0, gid: 0, rdev: 0, size: 0, blocks: 0, atimeNs: 0n, mtimeNs: 0n, ctimeNs: 0n
}

/**
 * Capacity and use of the local contents: the disk holding them, or with a bounded cache its
 * capacity and the local bytes (free = capacity − used, never more than the disk has free).
 */
export async function statfs (dataDir: string, cache?: CacheUse): Promise<StatFs> {
  const s = await fs.promises.statfs(dataDir)
  if (cache?.capacity !== undefined) {
    const blocks = Math.floor(cache.capacity / s.bsize)
    const free = Math.max(0, blocks - Math.ceil(cache.used() / s.bsize))
    return {
      bsize: s.bsize,
      frsize: s.bsize,
      blocks,
      bfree: Math.min(free, s.bfree),
      bavail: Math.min(free, s.bavail),
      files: s.files,
      ffree: s.ffree,
      favail: s.ffree,
      namemax: 255
    }
  }
  return {
    bsize: s.bsize,
    frsize: s.bsize,
    blocks: s.blocks,
    bfree: s.bfree,
    bavail: s.bavail,
    files: s.files,
    ffree: s.ffree,
    favail: s.ffree,
    namemax: 255
  }
}
