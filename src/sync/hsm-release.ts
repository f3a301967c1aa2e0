/**
 * `hsm release` (Lustre's `lfs hsm_release`, spec/fsx-dra.md §14.3): drop the local content of the
 * given files now, directories recursively, keeping their metadata. Only files exported and clean
 * and not open are released (task-release.ts decides); every other file is named with the reason.
 * Not a data repository task: no record, no report, no DurationSinceLastAccess. No HTTP here:
 * routes/hsm.ts streams the events.
 *
 * A path named that is no regular file or directory (a symlink), or whose object is lost from S3,
 * is refused; found under a directory, such entries are skipped silently, as are files released
 * already (a no-op, as lfs hsm_release of a released file).
 */
import type { FileSystem, ReleaseRefusal } from '../fs/filesystem'
import { releaseRefusal } from '../fs/filesystem'
import { isDir } from '../namespace/inode'
import { FsError } from '../util/errors'
import { type Ineligibility, refusalText, releaseTree } from './task-release'

export type Refusal = Exclude<ReleaseRefusal, 'already-released'> | Exclude<Ineligibility, 'recent'>

export type HsmReleaseEvent =
  | { path: string, error: string, code?: string }
  | { path: string, refused: Refusal, error: string }
  | { path: string, ok: true, bytes: number }

export interface HsmReleaseSummary {
  done: true
  released: number
  /** Files not released: dirty, never exported, open, lost (named ones) or not files (named ones). */
  refused: number
  /** Paths that could not be walked (missing). */
  failed: number
  /** Files released already, and entries under directories with nothing to release. */
  skipped: number
  bytes: number
  /** Stopped (client gone, daemon stopping) before every file was tried. */
  aborted?: true
}

export async function hsmRelease (filesystem: FileSystem, paths: string[], o: { signal?: AbortSignal, onEvent: (e: HsmReleaseEvent) => void | Promise<void> }): Promise<HsmReleaseSummary> {
  const summary: HsmReleaseSummary = { done: true, released: 0, refused: 0, failed: 0, skipped: 0, bytes: 0 }
  const refuse = async (path: string, why: Refusal): Promise<void> => {
    summary.refused++
    await o.onEvent({ path, refused: why, error: refusalText(why) })
  }
  const fail = async (path: string, err: unknown): Promise<void> => {
    summary.failed++
    await o.onEvent({ path, error: err instanceof Error ? err.message : String(err), ...(err instanceof FsError ? { code: err.code } : {}) })
  }
  // Named entries that the walk would skip silently are refused here, by name.
  const roots: string[] = []
  for (const path of paths) {
    try {
      const inode = await filesystem.resolve(path)
      const why = isDir(inode) ? undefined : releaseRefusal(inode)
      if (why === 'not-a-file' || why === 'lost') await refuse(path, why)
      else roots.push(path)
    } catch (err) {
      await fail(path, err)
    }
  }
  const { skipped } = await releaseTree(filesystem, roots, {
    signal: o.signal,
    on: {
      problem: fail,
      ineligible: async (path, why) => { if (why !== 'recent') await refuse(path, why) },
      result: async (path, result) => {
        if ('gone' in result) {
          // Changed since the walk saw it: written (dirty), released or removed meanwhile.
          const why = result.refusal
          if (why === undefined || why === 'already-released') summary.skipped++
          else await refuse(path, why)
        } else if (result.ok) {
          summary.released++
          summary.bytes += result.bytes
          await o.onEvent({ path, ok: true, bytes: result.bytes })
        } else if (result.refusal === 'busy') {
          await refuse(path, 'busy')
        } else {
          await fail(path, new Error(`${result.code}: ${result.message}`))
        }
      }
    }
  })
  summary.skipped += skipped
  if (o.signal?.aborted === true) summary.aborted = true
  return summary
}
