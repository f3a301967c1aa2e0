/**
 * `hsm archive` (Lustre's `lfs hsm_archive`, spec/fsx-dra.md §14.3): export the given files now,
 * directories recursively, whatever the DRA's automatic export policy. Not a data repository task
 * (no record, no report, not one-at-a-time): the same work as an export task (task-export.ts), asked
 * for on the spot and followed by its caller. No HTTP here: routes/hsm.ts streams the events.
 *
 * Paths are from the mount root ('/ns1/a.txt'); a directory holding DRAs (`/`) stands for their
 * directories. Each path is checked first, so a caller that does not wait still hears about paths
 * that cannot be archived before the work starts.
 */
import type { FileSystem } from '../fs/filesystem'
import { FsError } from '../util/errors'
import type { TreeExport } from './task-export'

/**
 * What an archive reports while it runs: errors of the paths given first, then the walk's running
 * totals and the files' results interleaved, and the walk's end.
 */
export type ArchiveEvent =
  | { path: string, error: string, code?: string }
  | { total: number, bytes: number }
  | { walked: true, total: number, bytes: number, skipped: number }
  | { path: string, ok: true, bytes: number }
  | { path: string, ok: false, error: string, code: string }

export interface ArchiveSummary {
  done: true
  archived: number
  failed: number
  /** Entries that needed nothing: exported already and unchanged since. */
  skipped: number
  bytes: number
  /** Stopped (the daemon is stopping) before every file was tried. */
  aborted?: true
}

export type OnArchiveEvent = (event: ArchiveEvent) => void | Promise<void>

/** The paths to walk; a path that cannot be archived is an error event (and a failure). */
export async function archiveRoots (filesystem: FileSystem, treeExport: TreeExport, paths: string[], onEvent: OnArchiveEvent): Promise<{ roots: string[], failed: number }> {
  const roots: string[] = []
  let failed = 0
  for (const path of paths) {
    try {
      await filesystem.resolve(path)
      const found = treeExport.rootsFor(path)
      if (typeof found === 'string') throw new Error(found)
      for (const r of found) if (!roots.includes(r)) roots.push(r)
    } catch (err) {
      failed++
      await onEvent({ path, error: (err as Error).message, ...(err instanceof FsError ? { code: err.code } : {}) })
    }
  }
  return { roots, failed }
}

/** Exports what needs it under the roots, `parallel` at a time. */
export async function archive (treeExport: TreeExport, roots: string[], o: { parallel: number, signal?: AbortSignal, onEvent: OnArchiveEvent }): Promise<ArchiveSummary> {
  const summary: ArchiveSummary = { done: true, archived: 0, failed: 0, skipped: 0, bytes: 0 }
  let total = 0
  let bytes = 0
  const { skipped } = await treeExport.run(roots, {
    parallel: o.parallel,
    signal: o.signal,
    on: {
      problem: async (path, error) => {
        summary.failed++
        await o.onEvent({ path, error })
      },
      found: async (_path, size) => {
        total++
        bytes += size
        await o.onEvent({ total, bytes })
      },
      walked: async (skipped) => { await o.onEvent({ walked: true, total, bytes, skipped }) },
      result: async (path, result) => {
        if ('gone' in result) return
        if (result.ok) {
          summary.archived++
          summary.bytes += result.bytes
          await o.onEvent({ path, ok: true, bytes: result.bytes })
        } else {
          summary.failed++
          await o.onEvent({ path, ok: false, error: `${result.code}: ${result.message}`, code: result.code })
        }
      }
    }
  })
  summary.skipped = skipped
  // Files in flight finish on an abort: what was cut short is the walk, whatever it had left.
  if (o.signal?.aborted === true) summary.aborted = true
  return summary
}
