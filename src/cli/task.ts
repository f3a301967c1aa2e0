/**
 * `s3link task import|export|release|list|show|cancel`: data repository tasks through the file system's FSx
 * API (awsJson over the Unix socket, src/api/client.ts), in the shapes `aws fsx` sends.
 *
 * `task export` and `task release` take paths in the mount as the user types them (absolute, or relative to the cwd)
 * and sends them as FSx wants them, relative to the mount point (`/mnt/fsx/path1` → `path1`). From a
 * cwd outside the mount, a relative path is read that way already (`task export ns1`), since it
 * could mean nothing else. `task release --days N` is FSx's DurationSinceLastAccess (Unit DAYS).
 *
 * `task import|export|release --wait` follows the task until it ends: a progress bar on stderr when stderr is a
 * terminal (cli-progress), a plain line every few seconds otherwise (logs, CI), and the exit status
 * says how it ended: 0 SUCCEEDED, 1 FAILED or CANCELED (with the reason on stderr). stdout carries
 * only the result, so `--json` output stays parseable.
 */
import { randomUUID } from 'node:crypto'
import path from 'node:path'
import type { Command } from 'commander'
import { Presets, SingleBar } from 'cli-progress'
import { callApiOk, callFsx } from '../api/client'
import { FsxError } from '../dra/errors'
import { REPORT_FORMAT, REPORT_SCOPE, reportName } from '../sync/task-record'
import { parseS3Path } from '../sync/task-targets'
import { UsageError } from '../util/errors'
import { mountpointsOf, mountRelative } from './hsm'
import { print } from './output'
import { socketOf, targetOptions, type TargetOptions } from './target'

/** The FSx DataRepositoryTask fields the human output reads (--json prints all of them). */
interface Task {
  TaskId: string
  Lifecycle: string
  Type: string
  CreationTime: number
  StartTime?: number
  EndTime?: number
  Paths?: string[]
  FailureDetails?: { Message?: string }
  Status?: { TotalCount?: number, SucceededCount?: number, FailedCount?: number }
  Report?: { Enabled: boolean, Path?: string }
  ReleaseConfiguration?: { DurationSinceLastAccess?: { Value?: number } }
}

const ENDED = ['SUCCEEDED', 'FAILED', 'CANCELED']
const POLL_MS = 500
const PLAIN_EVERY_MS = 5000

export function registerTaskCommands (cli: Command): void {
  const task = cli.command('task').description('data repository tasks: bulk imports from S3, exports to S3 and releases of local copies, with progress and completion reports (FSx tasks)')

  targetOptions(task.command('import')
    .description('import the metadata of the objects under S3 paths (default: every association\'s whole repository)')
    .argument('[s3path...]', 's3://bucket/prefix inside an association\'s repository'))
    .option('--report <s3path>', 'write a completion report of the failed objects under this S3 path (inside an association\'s repository)')
    .option('--wait', 'show progress until the task ends; exit 1 unless it SUCCEEDED')
    .action(async (paths: string[], o: TaskOptions) => {
      for (const p of paths) checked(() => parseS3Path(p, 'S3PATH'))
      const socket = await socketOf(o)
      await createTask(socket, 'IMPORT_METADATA_FROM_REPOSITORY', paths, o)
    })

  targetOptions(task.command('export')
    .description('export to S3 the files, directories and symlinks created or changed since their last export, under paths in ' +
      'associations without automatic export (default: every association)')
    .argument('[paths...]', 'files or directories in the mount (absolute, or relative to the current directory; ' +
      'from outside the mount, relative to the mount point as FSx\'s Paths)'))
    .option('--report <s3path>', 'write a completion report of the failed files (failures.csv) under this S3 path (inside an association\'s repository)')
    .option('--wait', 'show progress until the task ends; exit 1 unless it SUCCEEDED')
    .action(async (paths: string[], o: TaskOptions) => {
      const socket = await socketOf(o)
      await createTask(socket, 'EXPORT_TO_REPOSITORY', await fsxPaths(socket, paths), o)
    })

  targetOptions(task.command('release')
    .description('drop the local content of files exported to S3 and unchanged since, under paths in associations (default: every ' +
      'association); metadata stays and the next read loads the file again. Files dirty or never exported are left alone')
    .argument('[paths...]', 'files or directories in the mount (absolute, or relative to the current directory; ' +
      'from outside the mount, relative to the mount point as FSx\'s Paths)'))
    .option('--days <n>', 'only files last accessed (atime, mtime or ctime) more than N days before the task was created (0: every file)')
    .option('--report <s3path>', 'write a completion report of the failed files (failures.csv) under this S3 path (inside an association\'s repository)')
    .option('--wait', 'show progress until the task ends; exit 1 unless it SUCCEEDED')
    .action(async (paths: string[], o: TaskOptions & { days?: string }) => {
      const release = o.days === undefined ? {} : { ReleaseConfiguration: { DurationSinceLastAccess: { Unit: 'DAYS', Value: daysOf(o.days) } } }
      const socket = await socketOf(o)
      await createTask(socket, 'RELEASE_DATA_FROM_FILESYSTEM', await fsxPaths(socket, paths), o, release)
    })

  targetOptions(task.command('list').description('list the tasks, newest first'))
    .action(async (o: TargetOptions) => {
      const tasks = await describeAll(await socketOf(o))
      const rows = tasks.map((t) => [t.TaskId, shortType(t.Type), t.Lifecycle, progressText(t), isoTime(t.CreationTime), pathsText(t)])
      print(o.json === true, { DataRepositoryTasks: tasks }, tasks.length === 0
        ? 'no tasks'
        : table([['ID', 'TYPE', 'LIFECYCLE', 'PROGRESS', 'CREATED', 'PATHS'], ...rows]))
    })

  targetOptions(task.command('show').description('show one task: lifecycle, counters, times, report').argument('<id>', 'task id (task-…)'))
    .action(async (id: string, o: TargetOptions) => {
      const t = await describeOne(await socketOf(o), checkedId(id))
      print(o.json === true, t, describeTask(t))
    })

  targetOptions(task.command('cancel')
    .description('cancel a task: a PENDING one at once, an EXECUTING one after the objects in flight')
    .argument('<id>', 'task id (task-…)'))
    .option('--wait', 'wait until the task has stopped')
    .action(async (id: string, o: TargetOptions & { wait?: boolean }) => {
      const socket = await socketOf(o)
      const reply = await callFsx(socket, 'CancelDataRepositoryTask', { TaskId: checkedId(id) })
      if (o.wait !== true) {
        print(o.json === true, reply, `${String(reply.TaskId)}: ${String(reply.Lifecycle)}`)
        return
      }
      const t = await follow(socket, id)
      print(o.json === true, t, describeTask(t))
    })
}

type TaskOptions = TargetOptions & { report?: string, wait?: boolean }

/** Creates a task (`extra`: more CreateDataRepositoryTask parameters); with --wait follows it to its end. */
async function createTask (socket: string, type: string, paths: string[], o: TaskOptions, extra: object = {}): Promise<void> {
  if (o.report !== undefined) checked(() => parseS3Path(o.report as string, '--report'))
  const fsInfo = await callApiOk(socket, 'GET', '/api/status')
  const reply = await callFsx(socket, 'CreateDataRepositoryTask', {
    Type: type,
    FileSystemId: fsInfo.id,
    ...(paths.length > 0 ? { Paths: paths } : {}),
    Report: o.report !== undefined ? { Enabled: true, Path: o.report, Format: REPORT_FORMAT, Scope: REPORT_SCOPE } : { Enabled: false },
    ...extra,
    ClientRequestToken: randomUUID()
  })
  const created = reply.DataRepositoryTask as Task
  const what = shortType(type)
  if (o.wait !== true) {
    print(o.json === true, reply, `created ${what} task ${created.TaskId} (${created.Lifecycle})\nfollow it with: s3link task show ${created.TaskId}`)
    return
  }
  if (o.json !== true) process.stderr.write(`created ${what} task ${created.TaskId}\n`)
  await finish(await follow(socket, created.TaskId), o)
}

/** --days: a whole number of days, as FSx's DurationSinceLastAccess.Value (0 to 2^31-1). */
function daysOf (text: string): number {
  const days = Number(text)
  if (!/^\d+$/.test(text.trim()) || days > 2147483647) throw new UsageError(`--days: ${JSON.stringify(text)} is not a whole number of days (0 or more)`)
  return days
}

/** Export and release PATH arguments as FSx Paths: relative to the mount point, checked before anything is sent. */
async function fsxPaths (socket: string, paths: string[]): Promise<string[]> {
  if (paths.length === 0) return []
  const mounts = await mountpointsOf(socket)
  const cwd = process.cwd()
  const inMount = mounts.some((m) => cwd === m || cwd.startsWith(m.replace(/\/+$/, '') + '/'))
  return paths.map((given) => {
    if (!inMount && !path.isAbsolute(given)) return given
    const rel = mountRelative(given, mounts, cwd)
    return rel === '/' ? '/' : rel.slice(1)
  })
}

/** Prints the ended task; a task that did not succeed is an error (exit 1) with its reason. */
async function finish (t: Task, o: TargetOptions): Promise<void> {
  print(o.json === true, t, describeTask(t))
  if (t.Lifecycle === 'SUCCEEDED') return
  const reason = t.FailureDetails?.Message
  throw new UsageError(`task ${t.TaskId} ${t.Lifecycle}${reason !== undefined ? `: ${reason}` : ''}`)
}

/** Polls the task until it has ended, showing its progress on stderr. */
async function follow (socket: string, id: string): Promise<Task> {
  const progress = process.stderr.isTTY === true ? new BarProgress() : new PlainProgress()
  try {
    for (;;) {
      const t = await describeOne(socket, id)
      progress.show(t)
      if (ENDED.includes(t.Lifecycle)) return t
      await new Promise((resolve) => setTimeout(resolve, POLL_MS))
    }
  } finally {
    progress.stop()
  }
}

interface Progress { show: (t: Task) => void, stop: () => void }

/** A bar of objects processed (succeeded + failed) over objects listed so far. */
class BarProgress implements Progress {
  private readonly bar = new SingleBar({
    stream: process.stderr,
    format: '{id} {lifecycle} [{bar}] {value}/{total} {unit}, {failed} failed',
    barsize: 30,
    hideCursor: true,
    etaBuffer: 20
  }, Presets.shades_classic)

  private started = false

  show (t: Task): void {
    const { done, total, failed } = counts(t)
    const payload = { id: t.TaskId, lifecycle: t.Lifecycle.padEnd(9), failed, unit: unitOf(t) }
    if (!this.started) {
      this.bar.start(total, done, payload)
      this.started = true
      return
    }
    this.bar.setTotal(total)
    this.bar.update(done, payload)
  }

  stop (): void { if (this.started) this.bar.stop() }
}

/** One line when the lifecycle changes, and every few seconds while it runs. */
class PlainProgress implements Progress {
  private last = ''
  private lastAt = 0

  show (t: Task): void {
    const now = Date.now()
    if (t.Lifecycle === this.last && now - this.lastAt < PLAIN_EVERY_MS) return
    this.last = t.Lifecycle
    this.lastAt = now
    process.stderr.write(`${t.TaskId}: ${t.Lifecycle}, ${progressText(t)}\n`)
  }

  stop (): void {}
}

function counts (t: Task): { done: number, total: number, failed: number } {
  const s = t.Status ?? {}
  const failed = s.FailedCount ?? 0
  const done = (s.SucceededCount ?? 0) + failed
  return { done, total: Math.max(s.TotalCount ?? 0, done), failed }
}

function progressText (t: Task): string {
  if (t.Status === undefined) return '-'
  const { done, total, failed } = counts(t)
  return `${done}/${total} ${unitOf(t)}${failed > 0 ? `, ${failed} failed` : ''}`
}

async function describeOne (socket: string, id: string): Promise<Task> {
  const reply = await callFsx(socket, 'DescribeDataRepositoryTasks', { TaskIds: [id] })
  return (reply.DataRepositoryTasks as Task[])[0]
}

async function describeAll (socket: string): Promise<Task[]> {
  const all: Task[] = []
  let token: string | undefined
  do {
    const reply = await callFsx(socket, 'DescribeDataRepositoryTasks', token !== undefined ? { NextToken: token } : {})
    all.push(...reply.DataRepositoryTasks as Task[])
    token = reply.NextToken as string | undefined
  } while (token !== undefined)
  return all
}

function describeTask (t: Task): string {
  const lines: Array<[string, string]> = [
    ['type', t.Type],
    ['paths', pathsText(t)],
    ['created', isoTime(t.CreationTime)]
  ]
  if (t.StartTime !== undefined) lines.push(['started', isoTime(t.StartTime)])
  if (t.EndTime !== undefined) lines.push(['ended', isoTime(t.EndTime)])
  const days = t.ReleaseConfiguration?.DurationSinceLastAccess?.Value
  if (days !== undefined && days > 0) lines.push(['accessed', `more than ${plural(days, 'day')} before creation`])
  lines.push(['progress', progressText(t)])
  lines.push(['report', t.Report?.Enabled === true ? `${String(t.Report.Path).replace(/\/+$/, '')}/${t.TaskId}/${reportName(t.Type)}` : 'off'])
  if (t.FailureDetails?.Message !== undefined) lines.push(['failure', t.FailureDetails.Message])
  return `${t.TaskId}: ${t.Lifecycle}\n` + lines.map(([k, v]) => `  ${(k + ':').padEnd(10)}${v}`).join('\n')
}

/** Import tasks count S3 objects; export tasks count file-system entries. */
const unitOf = (t: Task): string => t.Type === 'IMPORT_METADATA_FROM_REPOSITORY' ? 'objects' : 'files'
const shortType = (type: string): string => ({ IMPORT_METADATA_FROM_REPOSITORY: 'import', EXPORT_TO_REPOSITORY: 'export', RELEASE_DATA_FROM_FILESYSTEM: 'release' } as Record<string, string>)[type] ?? type
const pathsText = (t: Task): string => (t.Paths ?? []).length === 0 ? '(every association)' : (t.Paths ?? []).join(' ')
const isoTime = (seconds: number): string => new Date(seconds * 1000).toISOString().replace(/\.\d+Z$/, 'Z')

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`

function checkedId (id: string): string {
  if (!/^task-[0-9a-f]{17,}$/.test(id)) throw new UsageError(`${id} is not a task id (task- and 17 hex digits)`)
  return id
}

function checked<T> (fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    if (err instanceof FsxError) throw new UsageError(err.message)
    throw err
  }
}

function table (rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)))
  return rows.map((r) => r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i])).join('  ')).join('\n')
}
