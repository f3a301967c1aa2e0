/**
 * Preloading released files, as `lfs hsm_restore` does (spec/fsx-dra.md §14.3): the bulk form
 * `find DIR -type f | xargs -P 8 lfs hsm_restore` in one call. Directories are walked (symlinks are
 * not followed, as find's -type f), every released regular file found is loaded, N at a time;
 * files already local are a no-op. Paths are relative to the mount root ('/ns1/a.txt').
 *
 * The walk runs first, so a caller can show a total before loading starts. It keeps only the
 * released files it found (path, inode number, size), deduplicated by inode (overlapping arguments,
 * hard links): memory grows with the number of files to load, not with the tree.
 *
 * A file loads through the same ContentLoader the readers use, in CHUNK steps with `ensure`, so
 * a concurrent reader shares the download, no single wait runs into the loader's deadline however
 * large the file, and progress is visible inside large files. No HTTP here: routes/hsm.ts streams
 * the events.
 */
import { type Inode, isDir, isReg } from '../namespace/inode'
import { isReleased } from '../namespace/hsm'

/** The namespace side (FileSystem has these). */
export interface RestoreTree {
  /** The inode as stat sees it: an imported entry's type is known (a symlink is not restored). */
  getattr: (path: string) => Promise<Inode>
  readdir: (path: string) => Promise<Array<{ name: string }>>
  /** Records a released file's content as complete; a no-op unless it is still released with that ETag. */
  markLoaded: (ino: number, etag: string) => Promise<void>
}

/** The content side (ContentLoader has it). */
export interface RestoreLoader {
  ensure: (inode: Inode, offset: number, length: number) => Promise<void>
}

/** What a restore reports while it runs, in order: walk errors, the total, then one event per file. */
export type RestoreEvent =
  | { path: string, error: string }
  | { total: number, bytes: number, skipped: number }
  | { path: string, loading: number }
  | { path: string, ok: true, bytes: number }

export interface RestoreSummary {
  done: true
  loaded: number
  failed: number
  /** Regular files that were already local (nothing to do). */
  skipped: number
  bytes: number
  /** Stopped (the caller went away, or the daemon is stopping) before every file was tried. */
  aborted?: true
}

export interface RestoreOptions {
  parallel: number
  signal?: AbortSignal
  /** Awaited: a slow consumer slows the restore down instead of piling up events. */
  onEvent: (event: RestoreEvent) => void | Promise<void>
}

/** Bytes waited for in one step: well within the loader's deadline even from a slow S3 server. */
export const CHUNK = 8 << 20

interface Target { path: string, ino: number, size: number }

export async function restore (tree: RestoreTree, loader: RestoreLoader, paths: string[], o: RestoreOptions): Promise<RestoreSummary> {
  const summary: RestoreSummary = { done: true, loaded: 0, failed: 0, skipped: 0, bytes: 0 }
  const fail = async (path: string, err: unknown): Promise<void> => {
    summary.failed++
    await o.onEvent({ path, error: messageOf(err) })
  }
  const { targets, skipped } = await walk(tree, paths, o.signal, fail)
  summary.skipped = skipped
  await o.onEvent({ total: targets.length, bytes: targets.reduce((n, t) => n + t.size, 0), skipped })

  let next = 0
  const worker = async (): Promise<void> => {
    while (next < targets.length && o.signal?.aborted !== true) {
      const target = targets[next++]
      try {
        const bytes = await loadOne(tree, loader, target.path, o)
        summary.loaded++
        summary.bytes += bytes
        await o.onEvent({ path: target.path, ok: true, bytes })
      } catch (err) {
        await fail(target.path, err)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(Math.max(1, o.parallel), targets.length) }, worker))
  if (o.signal?.aborted === true && summary.loaded + summary.failed < targets.length) summary.aborted = true
  return summary
}

/** Walks the paths depth first, in name order; errors (a missing path) are reported and skipped. */
async function walk (tree: RestoreTree, paths: string[], signal: AbortSignal | undefined, fail: (path: string, err: unknown) => Promise<void>): Promise<{ targets: Target[], skipped: number }> {
  const seen = new Set<number>()
  const targets: Target[] = []
  let skipped = 0
  const stack = [...paths].reverse()
  while (stack.length > 0 && signal?.aborted !== true) {
    const path = stack.pop() as string
    try {
      const inode = await tree.getattr(path)
      if (seen.has(inode.ino)) continue
      seen.add(inode.ino)
      if (isDir(inode)) {
        const names = (await tree.readdir(path)).map((e) => e.name)
        for (let i = names.length - 1; i >= 0; i--) stack.push(join(path, names[i]))
      } else if (isReg(inode)) {
        if (isReleased(inode.hsm)) targets.push({ path, ino: inode.ino, size: inode.size })
        else skipped++
      }
    } catch (err) {
      await fail(path, err)
    }
  }
  return { targets, skipped }
}

/** Loads one file; returns the bytes loaded (0 if a reader loaded it since the walk). */
async function loadOne (tree: RestoreTree, loader: RestoreLoader, path: string, o: RestoreOptions): Promise<number> {
  // Looked up again: since the walk, a reader may have loaded it or an import changed it.
  const inode = await tree.getattr(path)
  if (!isReg(inode) || !isReleased(inode.hsm)) return 0
  const { size } = inode
  const etag = inode.remote?.etag ?? ''
  for (let offset = 0; offset < size; offset += CHUNK) {
    await abortable(loader.ensure(inode, offset, CHUNK), o.signal)
    if (offset + CHUNK < size) await o.onEvent({ path, loading: offset + CHUNK })
  }
  // The loader marks it too, but only after its waiters wake: marking it here means that a file
  // reported loaded already says `exists archived` (and an empty file has nothing to load at all).
  await tree.markLoaded(inode.ino, etag)
  return size
}

/** p, or the signal's reason as soon as it aborts (the load itself goes on for other readers). */
async function abortable<T> (p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return await p
  signal.throwIfAborted()
  let onAbort = (): void => undefined
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([p, aborted])
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

function join (dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`
}

function messageOf (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
