/**
 * `s3link hsm state|restore|archive|release PATH…`: Lustre's `lfs hsm_state`, `lfs hsm_restore`,
 * `lfs hsm_archive` and `lfs hsm_release` (spec/fsx-dra.md §14.3) through the daemon's API
 * (src/api/routes/hsm.ts).
 *
 * PATHs are paths in the mount as the user types them, absolute or relative to the cwd; they are
 * turned into paths from the mount root here, lexically (a symlink inside the mount is the entry
 * itself, as lfs sees it), and a path outside the mount is refused before anything is sent. Output
 * names files as the user named them: a file found under a directory argument is that argument
 * plus the rest of its path, as find prints it.
 *
 * `restore` and `archive --wait` show progress on stderr (a bar on a terminal, a line every few
 * seconds otherwise); stdout carries only the result, so --json stays parseable. Exit status 1 when
 * some path failed; every failure is named on stderr. `archive` without --wait returns once the
 * daemon has checked the paths and started (as lfs hsm_archive queues its requests); the export
 * goes on in the daemon, and `hsm state` shows each file `exists archived` when it is done.
 * `release` is quick (local work only) and shows no progress; files it did not release are named on
 * stderr, and the exit status is 1 only when a PATH given (not a file found under a directory given)
 * was not released: `hsm release dir` over a tree with some unexported files is not an error.
 */
import fs from 'node:fs'
import path from 'node:path'
import { getSystemErrorMap } from 'node:util'
import { constants } from 'node:os'
import type { Command } from 'commander'
import { SingleBar } from 'cli-progress'
import { callApiLines, callApiOk } from '../api/client'
import { UsageError } from '../util/errors'
import { print } from './output'
import { socketOf, targetOptions, type TargetOptions } from './target'

/** The API's limits per call (routes/hsm.ts, and half its 1 MiB body limit): longer lists are split. */
const BATCH_PATHS = 10_000
const BATCH_BYTES = 512 << 10
const MAX_PARALLEL = 64
const PLAIN_EVERY_MS = 5000

interface Arg { given: string, rel: string }
interface StateLine { path: string, flags?: number, state?: string, error?: string, code?: string }

export function registerHsmCommands (cli: Command): void {
  const hsm = cli.command('hsm').description('where file contents are (lfs hsm_state), preloading them from S3 (lfs hsm_restore), ' +
    'exporting them now (lfs hsm_archive) and dropping local copies (lfs hsm_release)')

  targetOptions(hsm.command('state')
    .description('print the HSM state of files as lfs hsm_state does: released (only in S3), exists, archived, dirty')
    .argument('<paths...>', 'files or directories in the mount (absolute, or relative to the current directory)'))
    .action(async (paths: string[], o: TargetOptions) => {
      const socket = await socketOf(o)
      const args = await mountPaths(socket, paths)
      const lines: StateLine[] = []
      for (const batch of batches(args)) {
        const reply = await callApiOk(socket, 'POST', '/api/hsm/state', { json: { paths: batch.map((a) => a.rel) } })
        const states = reply.states as StateLine[]
        batch.forEach((a, i) => lines.push({ ...states[i], path: a.given }))
      }
      const failed = lines.filter((l) => l.error !== undefined)
      if (o.json === true) print(true, lines, '')
      else for (const l of lines) if (l.error === undefined) process.stdout.write(`${l.path}: ${String(l.state)}\n`)
      for (const l of failed) process.stderr.write(`s3link: cannot get the HSM state of ${l.path}: ${errorText(l)}\n`)
      if (failed.length > 0) process.exitCode = 1
    })

  targetOptions(hsm.command('restore')
    .description('load the content of released files from S3 now (directories: every file under them), several at a time; ' +
      'files already loaded are left alone')
    .argument('<paths...>', 'files or directories in the mount (absolute, or relative to the current directory)'))
    .option('--parallel <n>', `files loaded at once (1-${MAX_PARALLEL})`, '8')
    .action(async (paths: string[], o: TargetOptions & { parallel: string }) => {
      const parallel = parallelOf(o.parallel)
      const socket = await socketOf(o)
      const args = await mountPaths(socket, paths)
      const result = await restore(socket, args, parallel)
      const human = result.total === 0 && result.failed.length === 0
        ? `nothing to restore: ${plural(result.skipped, 'file')} already loaded`
        : `restored ${plural(result.loaded, 'file')} (${bytesText(result.bytes)}), ${result.skipped} already loaded` +
          `${result.failed.length > 0 ? `, ${result.failed.length} failed` : ''}`
      print(o.json === true, result, human)
      for (const f of result.failed) process.stderr.write(`s3link: cannot restore ${f.path}: ${f.error}\n`)
      if (result.aborted === true) process.stderr.write('s3link: the restore stopped before every file was tried (the daemon is stopping?)\n')
      if (result.failed.length > 0 || result.aborted === true) process.exitCode = 1
    })

  targetOptions(hsm.command('archive')
    .description('export files to S3 now (directories: everything under them), whatever the association\'s automatic export policy; ' +
      'files exported already and unchanged since are left alone')
    .argument('<paths...>', 'files or directories in the mount (absolute, or relative to the current directory)'))
    .option('--parallel <n>', `files exported at once (1-${MAX_PARALLEL})`, '8')
    .option('--wait', 'show progress until every file is exported; exit 1 if some failed')
    .action(async (paths: string[], o: TargetOptions & { parallel: string, wait?: boolean }) => {
      const parallel = parallelOf(o.parallel)
      const socket = await socketOf(o)
      const args = await mountPaths(socket, paths)
      const result = await archive(socket, args, parallel, o.wait === true)
      const started = args.length - result.failed.length
      const human = o.wait !== true
        ? started > 0 ? `archiving ${plural(started, 'path')} in the background (see: s3link hsm state PATH)` : 'nothing to archive'
        : result.total === 0 && result.failed.length === 0
          ? `nothing to archive: ${plural(result.skipped, 'file')} exported already`
          : `archived ${plural(result.archived, 'file')} (${bytesText(result.bytes)}), ${result.skipped} exported already` +
            `${result.failed.length > 0 ? `, ${result.failed.length} failed` : ''}`
      print(o.json === true, result, human)
      for (const f of result.failed) process.stderr.write(`s3link: cannot archive ${f.path}: ${errorText(f)}\n`)
      if (result.aborted === true) process.stderr.write('s3link: the archive stopped before every file was tried (the daemon is stopping?)\n')
      if (result.failed.length > 0 || result.aborted === true) process.exitCode = 1
    })

  targetOptions(hsm.command('release')
    .description('drop the local content of files exported to S3 and unchanged since (directories: every file under them), keeping ' +
      'their metadata; the next read loads them again. Files dirty, never exported or open are named and left alone')
    .argument('<paths...>', 'files or directories in the mount (absolute, or relative to the current directory)'))
    .action(async (paths: string[], o: TargetOptions) => {
      const socket = await socketOf(o)
      const args = await mountPaths(socket, paths)
      const result = await release(socket, args)
      const human = `released ${plural(result.released, 'file')} (${bytesText(result.bytes)}), ${result.skipped} released already` +
        (result.refused > 0 ? `, ${result.refused} not released (${refusalSummary(result.reasons)})` : '') +
        (result.failed.length > 0 ? `, ${result.failed.length} failed` : '')
      const { namedFailed, ...shown } = result
      print(o.json === true, shown, human)
      for (const f of result.problems) process.stderr.write(`s3link: cannot release ${f.path}: ${f.refused !== undefined ? f.error : errorText(f)}\n`)
      const unlisted = result.refused + result.failed.length - result.problems.length
      if (unlisted > 0) process.stderr.write(`s3link: … and ${unlisted} more not released (--json lists the first ${MAX_LISTED})\n`)
      if (result.aborted === true) process.stderr.write('s3link: the release stopped before every file was tried (the daemon is stopping?)\n')
      if (namedFailed || result.aborted === true) process.exitCode = 1
    })
}

function parallelOf (text: string): number {
  const parallel = Number(text)
  if (!/^\d+$/.test(text.trim()) || parallel < 1 || parallel > MAX_PARALLEL) throw new UsageError(`--parallel: ${JSON.stringify(text)} is not a whole number from 1 to ${MAX_PARALLEL}`)
  return parallel
}

interface RestoreResult { loaded: number, skipped: number, bytes: number, total: number, failed: Array<{ path: string, error: string }>, aborted?: boolean }

/** Runs the restore batch by batch, following each one's NDJSON events with the progress display. */
async function restore (socket: string, args: Arg[], parallel: number): Promise<RestoreResult> {
  const result: RestoreResult = { loaded: 0, skipped: 0, bytes: 0, total: 0, failed: [] }
  const progress = newProgress('restore')
  try {
    for (const batch of batches(args)) {
      let ended = false
      const partial = new Map<string, number>()
      await callApiLines(socket, 'POST', '/api/hsm/restore', { json: { paths: batch.map((a) => a.rel), parallel } }, (line) => {
        const p = typeof line.path === 'string' ? line.path : undefined
        if (typeof line.total === 'number') {
          result.total += line.total
          result.skipped += Number(line.skipped)
          progress.add(line.total, Number(line.bytes))
          if (line.total > 0) progress.note(`${plural(line.total, 'released file')} (${bytesText(Number(line.bytes))}) to load`)
        } else if (p !== undefined && typeof line.loading === 'number') {
          progress.bytes(line.loading - (partial.get(p) ?? 0))
          partial.set(p, line.loading)
        } else if (p !== undefined && line.ok === true) {
          progress.file(Number(line.bytes) - (partial.get(p) ?? 0))
          partial.delete(p)
          result.loaded++
          result.bytes += Number(line.bytes)
        } else if (p !== undefined && typeof line.error === 'string') {
          // Before the total these are paths the walk could not read, not files it counted.
          if (progress.counting) progress.file(0)
          partial.delete(p)
          result.failed.push({ path: display(p, batch), error: line.error })
        } else if (line.done === true) {
          ended = true
          if (line.aborted === true || typeof line.error === 'string') result.aborted = true
          if (typeof line.error === 'string') result.failed.push({ path: '(restore)', error: line.error })
        }
      })
      if (!ended) throw new UsageError('the daemon ended the restore without saying how it went (see its log)')
      progress.batchDone()
      if (result.aborted === true) break
    }
  } finally {
    progress.stop()
  }
  return result
}

interface ArchiveResult { archived: number, skipped: number, bytes: number, total: number, failed: Array<{ path: string, error: string, code?: string }>, aborted?: boolean }

/**
 * Runs the archive batch by batch. With wait, follows each one's NDJSON events with the progress
 * display (the walk's totals grow as it goes); without, reads until the daemon says it started.
 */
async function archive (socket: string, args: Arg[], parallel: number, wait: boolean): Promise<ArchiveResult> {
  const result: ArchiveResult = { archived: 0, skipped: 0, bytes: 0, total: 0, failed: [] }
  const progress = wait ? newProgress('archive') : undefined
  try {
    for (const batch of batches(args)) {
      let ended = false
      // The daemon's totals are running totals of this batch.
      let found = 0
      let foundBytes = 0
      await callApiLines(socket, 'POST', '/api/hsm/archive', { json: { paths: batch.map((a) => a.rel), parallel, wait } }, (line) => {
        const p = typeof line.path === 'string' ? line.path : undefined
        if (typeof line.total === 'number') {
          progress?.add(line.total - found, Number(line.bytes) - foundBytes)
          found = line.total
          foundBytes = Number(line.bytes)
          if (line.walked === true) {
            result.skipped += Number(line.skipped)
            if (found > 0) progress?.note(`${plural(found, 'file')} (${bytesText(foundBytes)}) to export`)
          }
        } else if (p !== undefined && line.ok === true) {
          progress?.file(Number(line.bytes))
          result.archived++
          result.bytes += Number(line.bytes)
        } else if (p !== undefined && typeof line.error === 'string') {
          if (line.ok === false) progress?.file(0)
          result.failed.push({ path: display(p, batch), error: line.error, ...(typeof line.code === 'string' ? { code: line.code } : {}) })
        } else if (line.started === true || line.done === true) {
          ended = true
          if (line.aborted === true || typeof line.error === 'string') result.aborted = true
          if (typeof line.error === 'string') result.failed.push({ path: '(archive)', error: line.error })
        }
      })
      if (!ended) throw new UsageError('the daemon ended the archive without saying how it went (see its log)')
      result.total += found
      progress?.batchDone()
      if (result.aborted === true) break
    }
  } finally {
    progress?.stop()
  }
  return result
}

interface ReleaseProblem { path: string, error: string, code?: string, refused?: string }
interface ReleaseResult {
  released: number
  skipped: number
  bytes: number
  /** Files not released, by reason (dirty, not-archived, busy, lost, not-a-file). */
  refused: number
  reasons: Record<string, number>
  /** Paths in error (missing): always named. */
  failed: Array<{ path: string, error: string, code?: string }>
  /** The first MAX_LISTED refusals and failures (a directory may hold millions of unexported files). */
  problems: ReleaseProblem[]
  /** Some PATH named on the command line was not released: exit 1. */
  namedFailed: boolean
  aborted?: boolean
}

const MAX_LISTED = 1000

/** Runs the release batch by batch; files under directories that were refused are listed, not errors. */
async function release (socket: string, args: Arg[]): Promise<ReleaseResult> {
  const result: ReleaseResult = { released: 0, skipped: 0, bytes: 0, refused: 0, reasons: {}, failed: [], problems: [], namedFailed: false }
  for (const batch of batches(args)) {
    let ended = false
    const named = new Set(batch.map((a) => a.rel))
    await callApiLines(socket, 'POST', '/api/hsm/release', { json: { paths: batch.map((a) => a.rel) } }, (line) => {
      const p = typeof line.path === 'string' ? line.path : undefined
      if (p !== undefined && line.ok === true) {
        result.released++
        result.bytes += Number(line.bytes)
      } else if (p !== undefined && typeof line.error === 'string') {
        const problem: ReleaseProblem = { path: display(p, batch), error: line.error }
        if (typeof line.code === 'string') problem.code = line.code
        if (typeof line.refused === 'string') {
          problem.refused = line.refused
          result.refused++
          result.reasons[line.refused] = (result.reasons[line.refused] ?? 0) + 1
        } else {
          result.failed.push(problem)
        }
        if (named.has(p) || problem.refused === undefined) result.namedFailed = true
        if (result.problems.length < MAX_LISTED) result.problems.push(problem)
      } else if (line.done === true) {
        ended = true
        result.skipped += Number(line.skipped ?? 0)
        if (line.aborted === true || typeof line.error === 'string') result.aborted = true
        if (typeof line.error === 'string') result.failed.push({ path: '(release)', error: line.error })
      }
    })
    if (!ended) throw new UsageError('the daemon ended the release without saying how it went (see its log)')
    if (result.aborted === true) break
  }
  return result
}

const REASONS: Record<string, string> = { dirty: 'dirty', 'not-archived': 'never exported', busy: 'open', lost: 'lost from S3', 'not-a-file': 'not a file' }
const refusalSummary = (reasons: Record<string, number>): string => Object.keys(REASONS).filter((k) => reasons[k] !== undefined).map((k) => `${reasons[k]} ${REASONS[k]}`).join(', ')

/** The PATH arguments as paths from the mount root, checked before anything is sent. */
async function mountPaths (socket: string, paths: string[]): Promise<Arg[]> {
  const mounts = await mountpointsOf(socket)
  return paths.map((given) => ({ given, rel: mountRelative(given, mounts, process.cwd()) }))
}

/** The daemon's mount point and its real path (the cwd comes back resolved: the same mount). */
export async function mountpointsOf (socket: string): Promise<string[]> {
  const mountpoint = String((await callApiOk(socket, 'GET', '/api/status')).mountpoint)
  return [mountpoint, await fs.promises.realpath(mountpoint).catch(() => mountpoint)]
}

export function mountRelative (given: string, mountpoints: string[], cwd: string): string {
  const abs = path.resolve(cwd, given)
  for (const m of mountpoints) {
    const base = m.replace(/\/+$/, '')
    if (abs === base) return '/'
    if (abs.startsWith(base + '/')) return abs.slice(base.length)
  }
  throw new UsageError(`${given} is not in the file system (mounted at ${mountpoints[0]}): nothing was done`)
}

/** A path from the daemon (from the mount root) as the user would name it: their argument plus the rest. */
export function display (rel: string, args: Arg[]): string {
  let best: Arg | undefined
  for (const a of args) {
    if (a.rel === rel) return a.given
    const under = a.rel === '/' || rel.startsWith(a.rel + '/')
    if (under && (best === undefined || a.rel.length > best.rel.length)) best = a
  }
  if (best === undefined) return rel
  return best.given.replace(/\/+$/, '') + (best.rel === '/' ? rel : rel.slice(best.rel.length))
}

/** Splits the arguments into calls within the API's limits. */
function batches (args: Arg[]): Arg[][] {
  const out: Arg[][] = []
  let current: Arg[] = []
  let bytes = 0
  for (const a of args) {
    const size = Buffer.byteLength(a.rel) + 3
    if (current.length > 0 && (current.length >= BATCH_PATHS || bytes + size > BATCH_BYTES)) {
      out.push(current)
      current = []
      bytes = 0
    }
    current.push(a)
    bytes += size
  }
  if (current.length > 0) out.push(current)
  return out
}

/** Files done over files to load, and bytes, accumulated over the batches. */
abstract class Progress {
  files = 0
  totalFiles = 0
  done = 0
  totalBytes = 0
  /** The current batch's walk is over: errors from now on are files that failed to load. */
  counting = false

  add (files: number, bytes: number): void {
    this.totalFiles += files
    this.totalBytes += bytes
    this.counting = true
    this.changed()
  }

  /** A line worth a log (the plain display prints it; a bar says it already). */
  note (_text: string): void {}
  bytes (n: number): void { this.done += n; this.changed() }
  file (bytes: number): void { this.files++; this.done += bytes; this.changed() }
  batchDone (): void { this.counting = false }
  protected text (): string { return `${this.files}/${this.totalFiles} files, ${bytesText(this.done)} of ${bytesText(this.totalBytes)}` }
  protected abstract changed (): void
  abstract stop (): void
}

function newProgress (verb: 'restore' | 'archive'): Progress {
  return process.stderr.isTTY === true ? new BarProgress(verb) : new PlainProgress(verb)
}

class BarProgress extends Progress {
  private readonly bar: SingleBar

  constructor (verb: string) {
    super()
    this.bar = new SingleBar({
      stream: process.stderr,
      format: `${verb} [{bar}] {value}/{total} files, {bytes}`,
      barsize: 30,
      hideCursor: true,
      etaBuffer: 20
    })
  }

  private started = false

  protected changed (): void {
    const payload = { bytes: `${bytesText(this.done)} of ${bytesText(this.totalBytes)}` }
    if (!this.started) {
      this.bar.start(this.totalFiles, this.files, payload)
      this.started = true
      return
    }
    this.bar.setTotal(this.totalFiles)
    this.bar.update(this.files, payload)
  }

  stop (): void { if (this.started) this.bar.stop() }
}

/** A line when the walk is done and every few seconds while files load (logs, CI). */
class PlainProgress extends Progress {
  private readonly timer = setInterval(() => this.line(), PLAIN_EVERY_MS).unref()
  private shown = ''

  constructor (private readonly verb: string) { super() }

  override note (text: string): void {
    process.stderr.write(`hsm ${this.verb}: ${text}\n`)
  }

  protected changed (): void {}

  private line (): void {
    const text = this.text()
    if (text === this.shown || this.totalFiles === 0) return
    this.shown = text
    process.stderr.write(`hsm ${this.verb}: ${text}\n`)
  }

  stop (): void { clearInterval(this.timer) }
}

/** An error in strerror's words where it has an errno ("No such file or directory"); else as the daemon said it. */
function errorText (l: { error?: string, code?: string }): string {
  const errno = l.code !== undefined ? (constants.errno as Record<string, number>)[l.code] : undefined
  const text = errno !== undefined ? getSystemErrorMap().get(-errno)?.[1] : undefined
  return text !== undefined ? text.charAt(0).toUpperCase() + text.slice(1) : String(l.error)
}

function bytesText (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let i = 0
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++ }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`
