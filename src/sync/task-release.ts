/**
 * Releasing file contents whose copy in S3 is current (spec/fsx-dra.md §14.3, §15): the work of a
 * RELEASE_DATA_FROM_FILESYSTEM task and of `hsm release` (`lfs hsm_release`). Metadata stays; the
 * next read loads the content again. The release itself is FileSystem.releaseContent, which checks
 * the HSM state again under the namespace's lock, so a file written between the walk and its turn
 * is never released.
 *
 * Each path is walked (task-walk.ts, streamed: memory does not grow with the tree) and regular
 * files are sorted in three:
 *   skipped     nothing to release: already released (or lost from S3); not a regular file
 *   ineligible  FSx's "not eligible" (§15): never exported, changed since its export (dirty), or
 *               accessed too recently for the task's DurationSinceLastAccess
 *   found       released now: a result follows (ok, or a failure with a completion-report code)
 * Files are released one at a time: each is a namespace write and a truncate, both local and
 * quick, and one at a time makes a cancel exact (the file in hand finishes, nothing else starts).
 */
import type { FileSystem, ReleaseRefusal } from '../fs/filesystem'
import { releaseRefusal } from '../fs/filesystem'
import { type Inode, isDir, lastAccessNs } from '../namespace/inode'
import { DAY_NS } from '../namespace/clock'
import { aborted, treeOf, walkTree } from './task-walk'

/** DurationSinceLastAccess as a task gives it: days before `nowNs` (the task's CreationTime). */
export interface AccessRule { nowNs: bigint, days: number }


/**
 * Old enough to release under DurationSinceLastAccess: more than `days` days (strictly: 9 days is
 * 9.00001+ days ago) between the last access and the task's creation. 0 days: every file, even one
 * touched after the task was created (FSx: "regardless of access time").
 */
export function oldEnough (inode: Inode, rule?: AccessRule): boolean {
  if (rule === undefined || rule.days === 0) return true
  return rule.nowNs - lastAccessNs(inode) > BigInt(rule.days) * DAY_NS
}

export type Ineligibility = 'not-archived' | 'dirty' | 'recent'

/** Why a regular file will not be released (undefined: release it; 'skip': nothing to release). */
export function eligibility (inode: Inode, rule?: AccessRule): Ineligibility | 'skip' | undefined {
  const why = releaseRefusal(inode)
  if (why === 'not-a-file' || why === 'already-released' || why === 'lost') return 'skip'
  if (why === 'not-archived' || why === 'dirty') return why
  return oldEnough(inode, rule) ? undefined : 'recent'
}

export type ReleaseCode = 'ResourceBusy' | 'InternalError'

/** How one found file ended; `gone`: removed, or no longer eligible, when its turn came. */
export type ReleaseResult =
  | { ok: true, bytes: number }
  | { ok: false, code: ReleaseCode, refusal?: ReleaseRefusal, message: string }
  | { gone: true, refusal?: ReleaseRefusal }

export interface TreeReleaseEvents {
  /** A path given that cannot be walked (missing). */
  problem: (path: string, error: unknown) => void | Promise<void>
  /** A regular file that is not released, and why. */
  ineligible?: (path: string, why: Ineligibility) => void | Promise<void>
  /** A file to release, before its release. */
  found?: (path: string, bytes: number) => void | Promise<void>
  result: (path: string, result: ReleaseResult) => void | Promise<void>
}

export interface TreeReleaseOptions {
  signal?: AbortSignal
  rule?: AccessRule
  on: TreeReleaseEvents
}

/** Releases what is eligible under each path (from the mount root); returns the entries skipped. */
export async function releaseTree (filesystem: FileSystem, paths: string[], o: TreeReleaseOptions): Promise<{ skipped: number }> {
  const tree = treeOf(filesystem)
  let skipped = 0
  for (const root of paths) {
    if (aborted(o.signal)) break
    for await (const item of walkTree(tree, root, o.signal)) {
      if ('error' in item) {
        await o.on.problem(item.path, item.error)
        continue
      }
      const { path, inode } = item
      if (isDir(inode)) continue
      const why = eligibility(inode, o.rule)
      if (why === 'skip') { skipped++; continue }
      if (why !== undefined) { await o.on.ineligible?.(path, why); continue }
      if (aborted(o.signal)) break
      await o.on.found?.(path, inode.size)
      await o.on.result(path, await releaseOne(filesystem, inode.ino))
    }
  }
  return { skipped }
}

/** Releases one file now; never throws. */
export async function releaseOne (filesystem: FileSystem, ino: number): Promise<ReleaseResult> {
  let outcome
  try {
    outcome = await filesystem.releaseContent(ino)
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return { gone: true }
    return { ok: false, code: 'InternalError', message: err instanceof Error ? err.message : String(err) }
  }
  if (typeof outcome !== 'string') return { ok: true, bytes: outcome.released }
  // Open: FSx's ResourceBusy. Anything else changed since the walk (written, released, lost).
  if (outcome === 'busy') return { ok: false, code: 'ResourceBusy', refusal: outcome, message: refusalText(outcome) }
  return { gone: true, refusal: outcome }
}

/** Why a file was not released, for people. */
export function refusalText (why: ReleaseRefusal | Ineligibility): string {
  switch (why) {
    case 'not-archived': return 'never exported: its content is only here (export it first: s3link hsm archive)'
    case 'dirty': return 'changed since its export (dirty): export it first (s3link hsm archive)'
    case 'busy': return 'the file is open: an open file cannot be released'
    case 'lost': return 'its object is no longer in S3 (lost_from_hsm)'
    case 'not-a-file': return 'not a regular file: only file contents are released'
    case 'already-released': return 'already released'
    case 'recent': return 'accessed too recently (DurationSinceLastAccess)'
  }
}
