/**
 * Whole-subtree operations the daemon itself performs on the namespace (not a user through the
 * mount): making a DRA's directory and removing a DRA's data. They go through the same FileSystem
 * operations as FUSE requests, so they take the same locks and keep every invariant (link counts,
 * files still open elsewhere become orphans).
 */
import { FsError } from '../util/errors'
import { S_IFDIR, S_IFMT } from '../namespace/inode'
import type { FileSystem } from './filesystem'

const ROOT = { uid: 0, gid: 0 }

export async function pathKind (fs: FileSystem, path: string): Promise<'directory' | 'other' | 'missing'> {
  try {
    const inode = await fs.resolve(path)
    return (inode.mode & S_IFMT) === S_IFDIR ? 'directory' : 'other'
  } catch (err) {
    if (err instanceof FsError && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) return 'missing'
    throw err
  }
}

/** mkdir -p with mode 0755, owned by root. */
export async function ensureDir (fs: FileSystem, path: string): Promise<void> {
  let current = ''
  for (const name of path.split('/').filter((n) => n !== '')) {
    current += '/' + name
    const kind = await pathKind(fs, current)
    if (kind === 'other') throw new Error(`${current} exists and is not a directory`)
    if (kind === 'missing') {
      try {
        await fs.mkdir(current, 0o755, ROOT)
      } catch (err) {
        // Made by someone else between our look and our mkdir: fine.
        if (!(err instanceof FsError && err.code === 'EEXIST')) throw err
      }
    }
  }
}

/** rm -r of path's contents, and of path itself unless it is the root. Missing: nothing to do. */
export async function removeTree (fs: FileSystem, path: string): Promise<void> {
  const kind = await pathKind(fs, path)
  if (kind === 'missing') return
  if (kind === 'other') { await fs.unlink(path); return }
  const base = path.endsWith('/') ? path.slice(0, -1) : path
  for (const entry of await fs.readdir(base === '' ? '/' : base)) {
    const child = `${base}/${entry.name}`
    if ((entry.type & S_IFMT) === S_IFDIR) await removeTree(fs, child)
    else await fs.unlink(child)
  }
  if (base !== '') await fs.rmdir(base)
}
