/**
 * Applying S3 objects to the namespace (import): each object becomes, or updates, one entry below
 * a DRA's directory, in one atomic batch per group of objects. No S3 here: the caller has listed
 * and HEADed the objects (src/sync/); this module decides what each one does to the tree.
 *
 * Rules (spec/fsx-dra.md §11, §13):
 *  - Missing parents are created as 0755 root:root directories (implicit directories of prefixes).
 *  - A new file is created released (`released exists archived`): size and times from the object,
 *    content loaded on first read. Without FSx metadata: 0755 root:root, mtime = LastModified.
 *  - An existing entry of the same type takes the object's metadata (only what the object carries:
 *    an object without metadata leaves the entry's mode and owner as they are). A file whose ETag
 *    changed is released again: its local content is dropped and loaded anew on the next read.
 *  - An existing entry of another type is left alone: S3ImportObjectTypeMismatch.
 *  - Local changes are never destroyed: a file that was changed locally and not yet exported
 *    (dirty, or created here and never exported) keeps its content and metadata, and the object is
 *    reported as LocalChangesNotExported. Export (when on) then sends the local version to S3.
 *  - A listed item (a batch import's object, known from its listing only) makes a new entry
 *    listed-only: the defaults above, and a readdir type of DT_UNKNOWN when the object is small
 *    enough to be a symlink. Its metadata is read before anyone sees its attributes (settle, from
 *    src/sync/listed-settler.ts), as if it had been imported whole. An existing entry whose object
 *    changed needs its metadata now: 'needs-metadata', the caller HEADs and imports it again.
 */
import { fsError, FsError } from '../util/errors'
import type { Namespace, Transaction } from '../namespace/namespace'
import { type Inode, type RemoteRef, type DirentRecord, isDir, isReg, permissionsOf, S_IFMT, S_IFDIR, S_IFLNK, S_IFREG } from '../namespace/inode'
import { HS_LOST, IMPORTED_RELEASED } from '../namespace/hsm'
import { hasLocalChanges } from './filesystem'
import { nowNs } from '../namespace/clock'
import type { PosixMetadata, EntryType } from '../repo/posix-metadata'
import type { ContentStore, Drop } from '../content/content'

export const TYPE_MISMATCH = 'S3ImportObjectTypeMismatch'
export const LOCAL_CHANGES = 'LocalChangesNotExported'

export interface ImportItem {
  /** Components below the DRA's directory; empty = the directory itself. */
  components: string[]
  type: EntryType
  meta: PosixMetadata
  /** The object: always for files and symlinks; a directory's marker object if it has one. */
  remote?: RemoteRef
  /** A symlink's target (the object's body). */
  target?: string
  /** Known from a listing only: `meta` is empty and `type` is 'file', which may be a symlink's object. */
  listed?: true
}

/** 'needs-metadata': only for a listed item (see above). */
export type ImportOutcome = 'created' | 'updated' | 'unchanged' | 'skipped' | 'needs-metadata' | { error: string, message: string }

/** An object this small may be a symlink's (its body is the target, at most PATH_MAX − 1 bytes). */
const SYMLINK_MAX = 4095

/** Which changes an import may make (an automatic import's policy; tasks do both). */
export interface ImportPolicy { create: boolean, update: boolean }
const EVERYTHING: ImportPolicy = { create: true, update: true }

const ROOT_OWNER = { uid: 0, gid: 0 }
const NS_PER_MS = 1_000_000n

/**
 * Applies items below the directory `rootIno` in one batch; returns one outcome per item. Files
 * whose object changed lose their local content after the batch (ContentStore.dropping).
 */
export async function importEntries (ns: Namespace, content: ContentStore, rootIno: number, items: ImportItem[], policy = EVERYTHING): Promise<ImportOutcome[]> {
  return await content.dropping(async (drop) => await ns.mutate(async (tx) => {
    await lookAhead(ns, tx, rootIno, items)
    const out: ImportOutcome[] = []
    for (const item of items) {
      try {
        out.push(await applyOne(ns, tx, rootIno, item, drop, policy))
      } catch (err) {
        if (!(err instanceof FsError)) throw err
        out.push({ error: err.code === 'ENOTDIR' || err.code === 'EEXIST' ? TYPE_MISMATCH : 'InternalError', message: err.message })
      }
    }
    return out
  }, { cold: true }))
}

/**
 * Entries a batch created, by `parent ino/name`: the namespace shows only committed entries, so
 * without this two objects below one new directory would each create their own copy of it.
 */
const madeBy = new WeakMap<Transaction, Map<string, Inode>>()

function made (tx: Transaction): Map<string, Inode> {
  let m = madeBy.get(tx)
  if (m === undefined) madeBy.set(tx, m = new Map())
  return m
}

/** The names of a batch looked up ahead, by `parent ino/name` (undefined: known to be absent). */
const knownBy = new WeakMap<Transaction, Map<string, DirentRecord | undefined>>()

/**
 * Looks up the last name of every item whose parent directories exist, in one read: a page of a
 * listing is mostly new names, and one read per name, each a trip to LevelDB's thread, was half of
 * applying the page.
 */
async function lookAhead (ns: Namespace, tx: Transaction, rootIno: number, items: ImportItem[]): Promise<void> {
  const wanted: Array<{ parent: number, name: string }> = []
  for (const item of items) {
    let dir: number | undefined = rootIno
    for (const name of item.components.slice(0, -1)) {
      const dirent: DirentRecord | undefined = await ns.lookup(dir, name)
      dir = dirent !== undefined && (dirent.type & S_IFMT) === S_IFDIR ? dirent.ino : undefined
      if (dir === undefined) break
    }
    const name = item.components[item.components.length - 1]
    if (dir !== undefined && name !== undefined) wanted.push({ parent: dir, name })
  }
  const found = await ns.lookupMany(wanted)
  knownBy.set(tx, new Map(wanted.map((w, i) => [`${w.parent}/${w.name}`, found[i]])))
}

async function lookupChild (ns: Namespace, tx: Transaction, dir: number, name: string): Promise<Inode | undefined> {
  const fresh = made(tx).get(`${dir}/${name}`)
  if (fresh !== undefined) return fresh
  const known = knownBy.get(tx)
  const dirent = known?.has(`${dir}/${name}`) === true ? known.get(`${dir}/${name}`) : await ns.lookup(dir, name)
  return dirent === undefined ? undefined : await ns.get(dirent.ino)
}

async function applyOne (ns: Namespace, tx: Transaction, rootIno: number, item: ImportItem, drop: Drop, policy: ImportPolicy): Promise<ImportOutcome> {
  let dir = await ns.get(rootIno)
  const names = item.components
  if (names.length === 0) {
    if (item.type !== 'directory') return { error: TYPE_MISMATCH, message: 'the DRA directory cannot be a file' }
    return applyMetadata(tx, dir, item, false) ? 'updated' : 'unchanged'
  }
  for (const name of names.slice(0, -1)) {
    const child = await childDir(ns, tx, dir, name, policy.create)
    if (child === undefined) return 'skipped'
    dir = child
  }
  const name = names[names.length - 1]
  const inode = await lookupChild(ns, tx, dir.ino, name)
  if (inode === undefined) {
    if (!policy.create) return 'skipped'
    create(tx, dir, name, item)
    return 'created'
  }
  if (!policy.update) return 'skipped'
  // A listed-only file may turn out to be a symlink; a listed item may be a symlink's object.
  const unknownType = (item.listed === true || inode.listedOnly !== undefined) && item.type !== 'directory' && !isDir(inode)
  if (!unknownType && (inode.mode & S_IFMT) !== typeBits(item.type)) {
    return { error: TYPE_MISMATCH, message: `${names.join('/')} is a ${describeType(inode)} here and a ${item.type} in S3` }
  }
  if (item.type === 'directory') return applyMetadata(tx, inode, item, false) ? 'updated' : 'unchanged'
  const remote = item.remote
  if (remote === undefined) return { error: 'InternalError', message: `${names.join('/')}: no object to import` }
  if (item.listed === true && inode.remote?.etag === remote.etag) return 'unchanged'
  if (hasLocalChanges(inode)) {
    return { error: LOCAL_CHANGES, message: `${names.join('/')} has local changes not yet exported: kept, the S3 version was not imported` }
  }
  if (item.listed === true) {
    if (inode.listedOnly === undefined) return 'needs-metadata'
    takeContent(inode, remote, drop) // still listed-only: its metadata is read when it settles
    tx.putInode(inode)
    return 'updated'
  }
  if (inode.listedOnly !== undefined) {
    await settle(ns, tx, inode, item, drop)
    return 'updated'
  }
  const changedContent = inode.remote?.etag !== remote.etag
  if (item.type === 'symlink' && item.target !== undefined && item.target !== inode.target) {
    inode.target = item.target
    inode.size = Buffer.byteLength(item.target)
  }
  const changedMeta = applyMetadata(tx, inode, item, changedContent)
  if (!changedContent) return changedMeta ? 'updated' : 'unchanged'
  takeContent(inode, remote, drop)
  tx.putInode(inode)
  return 'updated'
}

/** The entry now stands for this object: a file's local content is stale (released, dropped). */
function takeContent (inode: Inode, remote: RemoteRef, drop: Drop): void {
  if (isReg(inode)) {
    drop(inode.ino)
    inode.size = remote.size
    inode.hsm = IMPORTED_RELEASED
  }
  inode.remote = { ...remote, perm: permissionsOf(inode) }
}

/**
 * A listed-only entry takes what its object's HEAD says, as if it had been imported whole: its type
 * (a symlink's object makes it a symlink), its metadata (the defaults stay where the object has
 * none) and, if the object changed since the listing, its size and ETag.
 */
async function settle (ns: Namespace, tx: Transaction, inode: Inode, item: ImportItem, drop: Drop): Promise<void> {
  const place = inode.listedOnly
  if (item.remote !== undefined && item.remote.etag !== inode.remote?.etag) takeContent(inode, item.remote, drop)
  if (item.type === 'symlink' && isReg(inode)) {
    if ((inode.hsm ?? 0) !== IMPORTED_RELEASED) drop(inode.ino) // restored as a file meanwhile
    inode.mode = S_IFLNK | (inode.mode & 0o7777)
    inode.target = item.target ?? ''
    inode.size = Buffer.byteLength(inode.target)
    delete inode.hsm
  }
  applyMetadata(tx, inode, item, false) // and the permissions S3 holds, if they changed
  // Its real type for readdir (a listed-only entry is looked up, so settled, before a rename).
  if (place !== undefined && (await ns.lookup(place.parent, place.name))?.ino === inode.ino) tx.link(place.parent, place.name, inode)
  tx.settled(inode)
}

/**
 * Settles a listed-only inode with what its object's HEAD (and a symlink's GET) said, or 'gone' if
 * the object is no longer there: then the entry keeps the listing's defaults and is lost_from_hsm,
 * as a released file whose object vanished. Nothing happens if the entry was settled or removed
 * meanwhile. Content made stale is dropped after the batch.
 */
export async function settleListed (ns: Namespace, content: ContentStore, ino: number, found: ImportItem | 'gone'): Promise<void> {
  await content.dropping(async (drop) => await ns.mutate(async (tx) => {
    const inode = await ns.get(ino).catch(() => undefined)
    if (inode?.listedOnly === undefined) return
    if (found !== 'gone') {
      await settle(ns, tx, inode, found, drop)
      return
    }
    if (isReg(inode)) inode.hsm = (inode.hsm ?? 0) | HS_LOST
    tx.settled(inode)
  }, { cold: true })) // the background settles what no one looked up
}

async function childDir (ns: Namespace, tx: Transaction, dir: Inode, name: string, mayCreate: boolean): Promise<Inode | undefined> {
  const child = await lookupChild(ns, tx, dir.ino, name)
  if (child === undefined) {
    if (!mayCreate) return undefined
    return create(tx, dir, name, { type: 'directory', meta: {}, components: [] })
  }
  if (!isDir(child)) throw fsError('ENOTDIR', `${name} is a ${describeType(child)} here and a directory (prefix) in S3`)
  return child
}

function create (tx: Transaction, dir: Inode, name: string, item: ImportItem): Inode {
  const now = nowNs()
  const modified = item.remote !== undefined ? BigInt(item.remote.modified) * NS_PER_MS : now
  const directory = item.type === 'directory'
  const inode = tx.newInode({
    mode: typeBits(item.type) | ((item.meta.mode ?? 0o755) & 0o7777),
    uid: item.meta.uid ?? ROOT_OWNER.uid,
    gid: item.meta.gid ?? ROOT_OWNER.gid,
    nlink: directory ? 2 : 1,
    size: item.type === 'file' ? item.remote?.size ?? 0 : item.type === 'symlink' ? Buffer.byteLength(item.target ?? '') : 0,
    rdev: 0
  })
  inode.mtimeNs = item.meta.mtimeNs ?? modified
  inode.atimeNs = item.meta.atimeNs ?? inode.mtimeNs
  if (item.remote !== undefined) inode.remote = { ...item.remote, perm: permissionsOf(inode) }
  if (directory) {
    inode.parent = dir.ino
    inode.name = name
    dir.nlink++
  } else {
    if (item.type === 'file') inode.hsm = IMPORTED_RELEASED
    else inode.target = item.target
  }
  if (item.listed === true) inode.listedOnly = { parent: dir.ino, name }
  tx.link(dir.ino, name, inode, item.listed === true && inode.size <= SYMLINK_MAX ? 0 : inode.mode & S_IFMT)
  made(tx).set(`${dir.ino}/${name}`, inode)
  dir.mtimeNs = dir.ctimeNs = now
  tx.putInode(dir)
  return inode
}

/** Copies what the object carries onto the inode; true if anything changed. */
function applyMetadata (tx: Transaction, inode: Inode, item: ImportItem, contentChanged: boolean): boolean {
  const { meta } = item
  const before = [inode.mode, inode.uid, inode.gid, inode.atimeNs, inode.mtimeNs]
  if (meta.mode !== undefined) inode.mode = (inode.mode & S_IFMT) | (meta.mode & 0o7777)
  if (meta.uid !== undefined) inode.uid = meta.uid
  if (meta.gid !== undefined) inode.gid = meta.gid
  if (meta.atimeNs !== undefined) inode.atimeNs = meta.atimeNs
  if (meta.mtimeNs !== undefined) inode.mtimeNs = meta.mtimeNs
  else if (contentChanged && item.remote !== undefined) inode.mtimeNs = BigInt(item.remote.modified) * NS_PER_MS
  const after = [inode.mode, inode.uid, inode.gid, inode.atimeNs, inode.mtimeNs]
  const changed = before.some((v, i) => v !== after[i])
  // What S3 holds now is what the entry has: no chmod/chown of it left to export.
  if (changed && inode.remote !== undefined) inode.remote = { ...inode.remote, perm: permissionsOf(inode) }
  if (changed || contentChanged) {
    inode.ctimeNs = nowNs()
    tx.putInode(inode)
  }
  return changed
}

function typeBits (type: EntryType): number {
  return type === 'directory' ? S_IFDIR : type === 'symlink' ? S_IFLNK : S_IFREG
}

function describeType (inode: Inode): string {
  const t = inode.mode & S_IFMT
  return t === S_IFDIR ? 'directory' : t === S_IFLNK ? 'symlink' : 'file'
}
