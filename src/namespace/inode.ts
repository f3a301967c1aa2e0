/**
 * An inode as the namespace keeps it in memory, and its stored form (times as decimal strings
 * because JSON has no 64-bit integers).
 */
import { constants } from 'node:fs'
import { HS_RELEASED } from './hsm'

export const S_IFMT = constants.S_IFMT
export const S_IFREG = constants.S_IFREG
export const S_IFDIR = constants.S_IFDIR
export const S_IFLNK = constants.S_IFLNK
export const S_ISGID = 0o2000
export const ROOT_INO = 1

export interface Inode {
  ino: number
  /** File type and permission bits, as st_mode. */
  mode: number
  uid: number
  gid: number
  nlink: number
  size: number
  rdev: number
  atimeNs: bigint
  mtimeNs: bigint
  ctimeNs: bigint
  /** Symlink target. */
  target?: string
  /** A directory's parent (directories have exactly one), so renames can refuse to create cycles. */
  parent?: number
  /**
   * A directory's name in its parent, so its path is rebuilt from the parent chain (the paths of a
   * hard-linked file, src/namespace/links.ts). Absent on directories made before it was recorded.
   */
  name?: string
  /** HSM state flags (hsm.ts); absent = 0x0. */
  hsm?: number
  /** The S3 object this entry was imported from or last exported to. */
  remote?: RemoteRef
  /**
   * Imported from a listing only (a batch import lists, it does not HEAD each object): the object's
   * POSIX metadata, and whether it is a file or a symlink, are not read yet. Where its one name is,
   * so settling it (src/sync/listed-settler.ts) can set the directory entry's type.
   */
  listedOnly?: DirentPlace
  /**
   * The local bytes the saved record counts (its `local` field, part of meta:local-bytes); undefined
   * for a record saved before local bytes were counted. Set by the namespace only.
   */
  counted?: number
}

/** An S3 object an entry corresponds to: enough to load its content and to notice changes. */
export interface RemoteRef {
  /** The DRA it came through, and its bucket (so content stays loadable if the DRA is deleted). */
  dra: string
  bucket: string
  key: string
  etag: string
  size: number
  /** The object's LastModified, epoch ms. */
  modified: number
  /**
   * permissionsOf() the entry when the object was written or read: differing from the entry's now
   * means a chmod/chown not yet exported (undefined for records older than this field: unknown).
   */
  perm?: string
}

/** A directory entry's place: the directory and the name in it. */
export interface DirentPlace { parent: number, name: string }

/** What chmod and chown change of the metadata an object carries. */
export const permissionsOf = (inode: { mode: number, uid: number, gid: number }): string =>
  `${(inode.mode & 0o7777).toString(8)}:${inode.uid}:${inode.gid}`

export interface InodeRecord {
  mode: number
  uid: number
  gid: number
  nlink: number
  size: number
  rdev: number
  atime: string
  mtime: string
  ctime: string
  target?: string
  parent?: number
  name?: string
  hsm?: number
  remote?: RemoteRef
  listed?: DirentPlace
  /** localBytes() of this record, counted in meta:local-bytes (absent: written before counting). */
  local?: number
}

/** A directory entry: the child's inode number and file type (enough for readdir's d_ino/d_type). */
export interface DirentRecord {
  ino: number
  type: number
}

export const isDir = (inode: Inode): boolean => (inode.mode & S_IFMT) === S_IFDIR
export const isReg = (inode: Inode): boolean => (inode.mode & S_IFMT) === S_IFREG
export const isSymlink = (inode: Inode): boolean => (inode.mode & S_IFMT) === S_IFLNK

/**
 * Bytes of content this inode keeps on local disk, as the bounded cache counts them: a regular
 * file's size unless it is released (its content is in S3 only; a load in progress is counted by
 * the cache as a reservation). Logical size, not allocated blocks: a sparse region is a promise of
 * bytes that a write or an export will need, and counting it keeps the arithmetic exact.
 */
export function localBytes (inode: Inode): number {
  if ((inode.mode & S_IFMT) !== S_IFREG) return 0
  return ((inode.hsm ?? 0) & HS_RELEASED) !== 0 ? 0 : inode.size
}

export function encodeInode (inode: Inode): InodeRecord {
  const record: InodeRecord = {
    mode: inode.mode,
    uid: inode.uid,
    gid: inode.gid,
    nlink: inode.nlink,
    size: inode.size,
    rdev: inode.rdev,
    atime: inode.atimeNs.toString(),
    mtime: inode.mtimeNs.toString(),
    ctime: inode.ctimeNs.toString()
  }
  if (inode.target !== undefined) record.target = inode.target
  if (inode.parent !== undefined) record.parent = inode.parent
  if (inode.name !== undefined) record.name = inode.name
  if (inode.hsm !== undefined && inode.hsm !== 0) record.hsm = inode.hsm
  if (inode.remote !== undefined) record.remote = inode.remote
  if (inode.listedOnly !== undefined) record.listed = inode.listedOnly
  return record
}

export function decodeInode (ino: number, r: InodeRecord): Inode {
  const inode: Inode = {
    ino,
    mode: r.mode,
    uid: r.uid,
    gid: r.gid,
    nlink: r.nlink,
    size: r.size,
    rdev: r.rdev,
    atimeNs: BigInt(r.atime),
    mtimeNs: BigInt(r.mtime),
    ctimeNs: BigInt(r.ctime)
  }
  if (r.target !== undefined) inode.target = r.target
  if (r.parent !== undefined) inode.parent = r.parent
  if (r.name !== undefined) inode.name = r.name
  if (r.hsm !== undefined) inode.hsm = r.hsm
  if (r.remote !== undefined) inode.remote = r.remote
  if (r.listed !== undefined) inode.listedOnly = r.listed
  if (r.local !== undefined) inode.counted = r.local
  return inode
}

/** FSx's "last access" of a file (release, spec/fsx-dra.md §15): the latest of atime, mtime and ctime. */
export function lastAccessNs (inode: { atimeNs: bigint, mtimeNs: bigint, ctimeNs: bigint }): bigint {
  let t = inode.atimeNs
  if (inode.mtimeNs > t) t = inode.mtimeNs
  if (inode.ctimeNs > t) t = inode.ctimeNs
  return t
}
