/**
 * Hard links: every name of a file with more than one (`links:` keys, src/store/keys.ts), so a
 * change made through one name can be exported under all of them (spec/fsx-dra.md §12.2: "modifying
 * the file through any link updates all copies").
 *
 * INVARIANT: a non-directory inode has `links:` entries iff its nlink is 2 or more, exactly one per
 * name. A file with one name has none, so creating, writing, renaming and deleting ordinary files
 * writes nothing more than before; the first link(2) indexes both names, the unlink that leaves one
 * name removes the last entry. Entries are kept in the same batch as the dirents they mirror.
 * (Files linked before this index existed have no entries until their next link(2) indexes the two
 * names it knows; their other names are not found.)
 *
 * An entry holds (parent inode, name), not a path: renaming a directory above a linked file changes
 * nothing here. Paths are rebuilt from the parent chain, each directory knowing its parent and name.
 */
import type { Store } from '../store/db'
import { linkKey, linkName, linkRange, direntRange, childName } from '../store/keys'
import { type Inode, isDir, ROOT_INO } from './inode'
import type { Namespace, Transaction } from './namespace'
import { unlessGone } from '../util/errors'

/** One name of an inode: a directory entry. */
export interface Name { parent: number, name: string }

/** link(2) made `added` a name of inode, whose nlink counts it already; `existing` is a name it had. */
export function linkAdded (tx: Transaction, inode: Inode, existing: Name, added: Name): void {
  // `existing` is put again at every link: idempotent, and it indexes files linked before the index.
  for (const n of [existing, added]) tx.extra.push({ type: 'put', key: linkKey(inode.ino, n.parent, n.name), value: 1 })
}

/** The name `gone` of inode is removed (unlink, rename over it); call before nlink is decremented. */
export async function linkRemoved (tx: Transaction, store: Store, inode: Inode, gone: Name): Promise<void> {
  if (isDir(inode) || inode.nlink < 2) return
  const key = linkKey(inode.ino, gone.parent, gone.name)
  tx.extra.push({ type: 'del', key })
  if (inode.nlink > 2) return
  // One name is left: a file with one name has no entries. (The batch is not written yet: `gone` is still listed.)
  for await (const k of store.keys(linkRange(inode.ino))) if (k !== key) tx.extra.push({ type: 'del', key: k })
}

/** rename(2) of a non-directory from one name to another. */
export function linkMoved (tx: Transaction, inode: Inode, from: Name, to: Name): void {
  if (isDir(inode) || inode.nlink < 2) return
  tx.extra.push({ type: 'del', key: linkKey(inode.ino, from.parent, from.name) })
  tx.extra.push({ type: 'put', key: linkKey(inode.ino, to.parent, to.name), value: 1 })
}

/** The indexed names of an inode (none when it has a single name), as last committed. */
export async function namesOf (store: Store, ino: number): Promise<Name[]> {
  const names: Name[] = []
  for await (const key of store.keys(linkRange(ino))) names.push(linkName(key))
  return names
}

/** The mount-relative path of a directory ('/' for the root), or undefined if its chain is broken. */
export async function dirPath (ns: Namespace, ino: number): Promise<string | undefined> {
  const parts: string[] = []
  const seen = new Set<number>()
  while (ino !== ROOT_INO) {
    if (seen.has(ino)) return undefined
    seen.add(ino)
    const dir = await unlessGone(ns.get(ino)) // a database error is not a broken chain: it throws
    if (dir === undefined || dir.parent === undefined) return undefined
    const name = dir.name ?? await nameIn(ns, dir.parent, ino)
    if (name === undefined) return undefined
    parts.unshift(name)
    ino = dir.parent
  }
  return '/' + parts.join('/')
}

/** Directories made before they recorded their name: find it among the parent's entries. */
async function nameIn (ns: Namespace, parent: number, ino: number): Promise<string | undefined> {
  for await (const [key, dirent] of ns.store.entries<{ ino: number }>(direntRange(parent))) {
    if (dirent.ino === ino) return childName(key)
  }
  return undefined
}

/** Every current path of a hard-linked inode, from the index (empty when it has no entries). */
export async function indexedPaths (ns: Namespace, ino: number): Promise<string[]> {
  const paths: string[] = []
  for (const { parent, name } of await namesOf(ns.store, ino)) {
    const dir = await dirPath(ns, parent)
    if (dir !== undefined) paths.push(dir === '/' ? `/${name}` : `${dir}/${name}`)
  }
  return paths
}
