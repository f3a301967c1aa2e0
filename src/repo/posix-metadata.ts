/**
 * POSIX metadata on S3 objects exactly as FSx for Lustre writes and reads it (spec/fsx-dra.md §13):
 * user metadata `file-permissions` (octal st_mode with type bits, e.g. 0100644), `file-owner`,
 * `file-group` (decimal), `file-atime`/`file-mtime` (nanoseconds + "ns", or milliseconds without
 * the suffix), and `user-agent` on export. Pure functions; S3 SDKs hand user metadata over with
 * lower-case keys and without the `x-amz-meta-` prefix, which is the form used here.
 */
import { constants } from 'node:fs'

const { S_IFMT, S_IFREG, S_IFDIR, S_IFLNK } = constants
const S_ISUID = 0o4000
const NS_PER_MS = 1_000_000n

export const USER_AGENT = 's3link'

/** What an object says about the entry it stands for; absent fields were absent or unreadable. */
export interface PosixMetadata {
  /** st_mode: type and permission bits (setuid dropped, as FSx does). */
  mode?: number
  uid?: number
  gid?: number
  atimeNs?: bigint
  mtimeNs?: bigint
}

export type EntryType = 'file' | 'directory' | 'symlink'

/** Decodes user metadata; malformed values are ignored one by one (the object still imports). */
export function decodePosixMetadata (meta: Record<string, string | undefined> = {}): PosixMetadata {
  const out: PosixMetadata = {}
  const perms = meta['file-permissions']
  if (perms !== undefined && /^[0-7]{1,7}$/.test(perms)) {
    const mode = parseInt(perms, 8) & ~S_ISUID
    if ([S_IFREG, S_IFDIR, S_IFLNK, 0].includes(mode & S_IFMT)) out.mode = mode
  }
  const uid = decimalId(meta['file-owner'])
  if (uid !== undefined) out.uid = uid
  const gid = decimalId(meta['file-group'])
  if (gid !== undefined) out.gid = gid
  const atime = timeNs(meta['file-atime'])
  if (atime !== undefined) out.atimeNs = atime
  const mtime = timeNs(meta['file-mtime'])
  if (mtime !== undefined) out.mtimeNs = mtime
  return out
}

/** The user metadata s3link writes on export. */
export function encodePosixMetadata (e: { mode: number, uid: number, gid: number, atimeNs: bigint, mtimeNs: bigint }): Record<string, string> {
  return {
    'file-permissions': '0' + (e.mode & (S_IFMT | 0o7777)).toString(8).padStart(6, '0'),
    'file-owner': String(e.uid),
    'file-group': String(e.gid),
    'file-atime': `${e.atimeNs}ns`,
    'file-mtime': `${e.mtimeNs}ns`,
    'user-agent': USER_AGENT
  }
}

/**
 * The type an object stands for: a key ending in `/` is a directory marker; metadata saying
 * S_IFLNK makes a symlink (the body is the target); anything else is a regular file.
 */
export function entryTypeOf (key: string, meta: PosixMetadata): EntryType {
  if (key.endsWith('/')) return 'directory'
  const type = (meta.mode ?? 0) & S_IFMT
  if (type === S_IFLNK) return 'symlink'
  return 'file'
}

/** Mode bits for an imported entry: the object's, else FSx's default 0755 (type from entryTypeOf). */
export function importedMode (type: EntryType, meta: PosixMetadata): number {
  const typeBits = type === 'directory' ? S_IFDIR : type === 'symlink' ? S_IFLNK : S_IFREG
  return typeBits | ((meta.mode ?? 0o755) & 0o7777)
}

function decimalId (v: string | undefined): number | undefined {
  if (v === undefined || !/^\d{1,10}$/.test(v)) return undefined
  const n = Number(v)
  return n <= 0xffffffff ? n : undefined
}

function timeNs (v: string | undefined): bigint | undefined {
  if (v === undefined) return undefined
  const m = /^(\d{1,20})(ns)?$/.exec(v)
  if (m === null) return undefined
  return m[2] === 'ns' ? BigInt(m[1]) : BigInt(m[1]) * NS_PER_MS
}
