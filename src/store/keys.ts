/**
 * The LevelDB key schema: every key the daemon stores, in one place, each with one builder.
 * Nothing else concatenates key strings.
 *
 *   meta:fs                    → FsMeta          identity of this file system (id, name, created)
 *   meta:next-ino              → number          next inode number to hand out
 *   meta:synced                → number          time of the last fsync(2) that had nothing else to write
 *   meta:local-bytes           → number          bytes of content held locally: the sum of every inode
 *                                                record's `local` (src/namespace/namespace.ts, same batch)
 *   meta:local-scan            → string          while set: inode records written before local bytes were
 *                                                counted are being counted; the last inode key done
 *   ino:<ino16>                → InodeRecord     one inode: type+mode, owner, size, times, nlink, target
 *   dirent:<parent16>/<name>   → DirentRecord    one directory entry: child inode and its type bits
 *   xattr:<ino16>/<name>       → string          one extended attribute, value in base64
 *   links:<ino16>/<parent16>/<name> → 1          one name of a non-directory with two or more names (hard
 *                                                links): kept in the batch that changes its dirents, so
 *                                                every path of a file is found (src/namespace/links.ts)
 *   orphan:<ino16>             → 1               inode unlinked while open; deleted at release or start
 *   local:<ino16>              → number          inode whose content is local (its `local` bytes > 0): what
 *                                                the bounded cache may release (src/content/cache.ts)
 *   listed:<ino16>             → 1               inode imported from a listing whose object's metadata is not
 *                                                read yet (inode.listedOnly; src/sync/listed-settler.ts)
 *   bucket:<bucketname>        → BucketEntry     one registered bucket (src/repo/bucket-entry.ts), secrets
 *                                                included: the database lives in the 0700 state directory
 *   dra:<dra-id>               → DraRecord       one data repository association (src/dra/association.ts)
 *   drareq:<seq16>             → DraRequest      a queued create/update/delete of a DRA, worked in seq order
 *   dratoken:<op>/<token>      → TokenRecord     a ClientRequestToken already answered, with its answer
 *   impq:<seq16>               → QueuedChange    an S3 change (webhook, SQS) waiting for automatic import
 *   expq:<seq16>               → ExportEntry     a path whose state S3 must learn (src/sync/export-queue.ts)
 *   expp:<path>                → number          that path's newest expq entry (coalescing, import guard)
 *   task:<task-id>             → TaskRecord      one data repository task, in the FSx shape (src/sync/task-record.ts)
 *   tasktoken:<token>          → TaskToken       a CreateDataRepositoryTask ClientRequestToken: its parameters and task
 *   batchimport:<dra-id>       → task id         the DRA's BatchImportMetaDataOnCreate task was created (once, ever)
 *
 * Inode numbers are fixed-width lower-case hex (16 digits) so that key order is numeric order and a
 * directory's entries, or an inode's xattrs, are one contiguous range: `<prefix>/` .. `<prefix>0`
 * ('0' is the character after '/').
 */

export const META_FS = 'meta:fs'
export const META_NEXT_INO = 'meta:next-ino'
export const META_SYNCED = 'meta:synced'
export const META_LOCAL_BYTES = 'meta:local-bytes'
export const META_LOCAL_SCAN = 'meta:local-scan'

export function inoHex(ino: number): string {
  return ino.toString(16).padStart(16, '0')
}

export const inodeKey = (ino: number): string => `ino:${inoHex(ino)}`
export const direntKey = (parent: number, name: string): string => `dirent:${inoHex(parent)}/${name}`
export const xattrKey = (ino: number, name: string): string => `xattr:${inoHex(ino)}/${name}`
export const orphanKey = (ino: number): string => `orphan:${inoHex(ino)}`
/** Names never contain '/', so the parent is the fixed-width part after the first '/'. */
export const linkKey = (ino: number, parent: number, name: string): string => `links:${inoHex(ino)}/${inoHex(parent)}/${name}`

/** Bounds of the range holding every key `<prefix>/…` for one inode. */
export interface Range { gt: string, lt: string }
const childRange = (prefix: string): Range => ({ gt: `${prefix}/`, lt: `${prefix}0` })
export const direntRange = (parent: number): Range => childRange(`dirent:${inoHex(parent)}`)
export const xattrRange = (ino: number): Range => childRange(`xattr:${inoHex(ino)}`)
export const linkRange = (ino: number): Range => childRange(`links:${inoHex(ino)}`)
export const orphanRange: Range = { gt: 'orphan:', lt: 'orphan;' }
export const localKey = (ino: number): string => `local:${inoHex(ino)}`
export const localRange: Range = { gt: 'local:', lt: 'local;' }
export const listedKey = (ino: number): string => `listed:${inoHex(ino)}`
export const listedRange: Range = { gt: 'listed:', lt: 'listed;' }
/** Every inode record, in inode order; `after` resumes behind a key already seen. */
export const inodeRange = (after?: string): Range => ({ gt: after ?? 'ino:', lt: 'ino;' })

/**
 * S3 bucket names are 3–63 characters of [a-z0-9.-] (validated before a key is built), so the name
 * needs no escaping and every bucket key sorts between `bucket:` and `bucket;` (';' follows ':').
 */
export const bucketKey = (bucketname: string): string => `bucket:${bucketname}`
export const bucketRange: Range = { gt: 'bucket:', lt: 'bucket;' }

export const draKey = (id: string): string => `dra:${id}`
export const draRange: Range = { gt: 'dra:', lt: 'dra;' }
export const draRequestKey = (seq: number): string => `drareq:${inoHex(seq)}`
export const draRequestRange: Range = { gt: 'drareq:', lt: 'drareq;' }
/** Tokens are 1–63 of [A-za-z0-9_.-] (validated before a key is built): no escaping needed. */
export const draTokenKey = (op: string, token: string): string => `dratoken:${op}/${token}`
export const draTokenRange: Range = { gt: 'dratoken:', lt: 'dratoken;' }

export const importQueueKey = (seq: number): string => `impq:${inoHex(seq)}`
export const importQueueRange: Range = { gt: 'impq:', lt: 'impq;' }

export const taskKey = (id: string): string => `task:${id}`
export const taskRange: Range = { gt: 'task:', lt: 'task;' }
/** Same token rules as draTokenKey. */
export const taskTokenKey = (token: string): string => `tasktoken:${token}`
export const batchImportKey = (draId: string): string => `batchimport:${draId}`

export const exportQueueKey = (seq: number): string => `expq:${inoHex(seq)}`
export const exportQueueRange: Range = { gt: 'expq:', lt: 'expq;' }
/** Paths are mount-relative and begin with '/'. */
export const exportPathKey = (path: string): string => `expp:${path}`

/** The directory of a key built by direntKey (its fixed-width hex after `dirent:`). */
export function direntParent (key: string): number {
  return parseInt(key.slice('dirent:'.length, 'dirent:'.length + 16), 16)
}

/** The name part of a key built by direntKey or xattrKey. */
export function childName(key: string): string {
  return key.slice(key.indexOf('/') + 1)
}

/** The directory and name of a key built by linkKey. */
export function linkName (key: string): { parent: number, name: string } {
  const rest = childName(key)
  return { parent: parseInt(rest.slice(0, 16), 16), name: rest.slice(17) }
}

export function orphanIno(key: string): number {
  return parseInt(key.slice('orphan:'.length), 16)
}

/** The inode number of a key built by inodeKey, localKey or listedKey. */
export function keyIno(key: string): number {
  return parseInt(key.slice(key.indexOf(':') + 1), 16)
}
