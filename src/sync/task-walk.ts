/**
 * A depth-first walk of the subtree below a path, streamed: each directory is read through the
 * namespace's entry iterator as the walk goes, so memory holds one open listing per level of depth,
 * never a whole directory or tree (an export task may cover millions of files). Entries come in
 * pre-order (a directory before its contents), in name order; symlinks are not followed.
 *
 * An entry removed between its listing and its turn is left out: the walk sees the tree as it is,
 * not as a snapshot.
 */
import { unlessGone } from '../util/errors'
import { type Inode, isDir } from '../namespace/inode'
import type { FileSystem } from '../fs/filesystem'

/** The namespace side (FileSystem and its Namespace have these). */
export interface WalkTree {
  resolve: (path: string) => Promise<Inode>
  get: (ino: number) => Promise<Inode>
  list: (dir: number) => AsyncIterable<{ name: string, ino: number }>
}

/** A file system's tree as the walk reads it. */
export function treeOf (filesystem: FileSystem): WalkTree {
  return {
    resolve: async (p) => await filesystem.resolve(p),
    get: async (ino) => await filesystem.ns.get(ino),
    list: (ino) => filesystem.ns.list(ino)
  }
}

/** A function, not `signal?.aborted` inline: TypeScript keeps that narrowed across awaits. */
export const aborted = (signal?: AbortSignal): boolean => signal?.aborted === true

export type WalkItem = { path: string, inode: Inode } | { path: string, error: unknown }

/** The root first (an error item when it cannot be resolved), then everything below it. */
export async function * walkTree (tree: WalkTree, root: string, signal?: AbortSignal): AsyncGenerator<WalkItem> {
  let inode: Inode
  try {
    inode = await tree.resolve(root)
  } catch (error) {
    yield { path: root, error }
    return
  }
  yield { path: root, inode }
  if (!isDir(inode)) return
  const stack: Array<{ path: string, entries: AsyncIterator<{ name: string, ino: number }> }> = []
  const open = (path: string, ino: number): void => { stack.push({ path, entries: tree.list(ino)[Symbol.asyncIterator]() }) }
  open(root, inode.ino)
  try {
    while (stack.length > 0 && signal?.aborted !== true) {
      const top = stack[stack.length - 1]
      const next = await top.entries.next()
      if (next.done === true) {
        stack.pop()
        continue
      }
      const path = join(top.path, next.value.name)
      let child: Inode | undefined
      try {
        child = await unlessGone(tree.get(next.value.ino))
      } catch (error) {
        yield { path, error } // a database error: reported, not taken for a removal
        continue
      }
      if (child === undefined) continue // removed since it was listed
      yield { path, inode: child }
      if (isDir(child)) open(path, child.ino)
    }
  } finally {
    // Stopped early (cancel, or the consumer broke off): close the listings still open.
    for (const level of stack) await level.entries.return?.()
  }
}

export function join (dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`
}
