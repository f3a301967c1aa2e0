/**
 * Data repository tasks (spec/fsx-dra.md §16–18): a durable queue of tasks, worked one at a time in
 * creation order; the others wait PENDING. IMPORT_METADATA_FROM_REPOSITORY lists S3 (ImportService);
 * EXPORT_TO_REPOSITORY walks the file system (task-export.ts) and is refused for a DRA with an
 * AutoExportPolicy, as FSx does (§12.2). RELEASE_DATA_FROM_FILESYSTEM walks the file system too and
 * drops the local content of files exported and clean (task-release.ts), those accessed longer ago
 * than its DurationSinceLastAccess (§15).
 *
 * Every task is one record in the FSx shape (`task:<id>`), rewritten at each transition:
 *
 *   PENDING ──run──▶ EXECUTING ──▶ SUCCEEDED (no file failed) | FAILED (files failed, or fatal)
 *      │                 └──cancel──▶ CANCELING ──page in flight done──▶ CANCELED
 *      └──cancel──▶ CANCELED
 *
 * While a task runs its counters live in memory and are saved about once a second, and at the end.
 * A daemon stopped or killed mid-task finds it EXECUTING at the next start and runs it again from
 * the beginning (importing an object twice changes nothing; an export skips what it exported
 * already, a release what is released already); a CANCELING one is CANCELED then.
 * Failed files go to a file under STATE_DIR/tasks as report lines (there may be millions), which
 * becomes the completion report in S3 before the task is said to have ended, so a client that sees
 * the end can read the report.
 *
 * BatchImportMetaDataOnCreate is an import task too: queued when such a DRA first becomes
 * AVAILABLE, with a `batchimport:<dra>` flag written in the same batch so it happens once, ever.
 *
 * All record changes run under one FIFO mutex, so cancel, counters and the runner never overwrite
 * each other's fields.
 */
import { EventEmitter } from 'node:events'
import fs from 'node:fs'
import path from 'node:path'
import type { Logger } from '../daemon/logger'
import type { Associations } from '../dra/associations'
import { type DraRecord, type Tag, exportEvents } from '../dra/association'
import { FsxError, badRequest } from '../dra/errors'
import type { Op, Store } from '../store/db'
import { batchImportKey, taskKey, taskRange, taskTokenKey } from '../store/keys'
import type { S3Clients } from '../repo/s3-clients'
import { describeS3Error } from '../repo/objects'
import { uploadFile } from '../repo/report-upload'
import type { ImportService } from './import-service'
import type { TreeExport } from './task-export'
import { FailureFile } from './task-failures'
import { type AccessRule, releaseTree } from './task-release'
import { type DescribeTasksInput, describeTasks, newestFirst } from './task-describe'
import {
  type CompletionReport, type ReleaseConfiguration, type TaskLifecycle, type TaskRecord, type TaskStatus, type TaskType,
  ENDED, REPORT_FORMAT, REPORT_SCOPE, failure, newTaskId, reportName, taskArn
} from './task-record'
import { IMPORTABLE, draHolding, exportTargets, importTargets, parseS3Path, releaseTargets } from './task-targets'
import { type TaskToken, checkSameRequest, fingerprintOf } from './task-token'
import { Mutex } from '../util/mutex'

export interface CreateTaskInput {
  Type: TaskType
  Paths?: string[]
  FileSystemId: string
  Report: CompletionReport
  ClientRequestToken?: string
  Tags?: Tag[]
  CapacityToRelease?: number
  ReleaseConfiguration?: ReleaseConfiguration
}

export interface TaskServiceOptions {
  store: Store
  associations: Associations
  imports: ImportService
  exports: TreeExport
  clients: S3Clients
  /** Where running tasks keep their failed files (STATE_DIR/tasks). */
  dir: string
  log: Logger
}

const IMPORT = 'IMPORT_METADATA_FROM_REPOSITORY'
const EXPORT = 'EXPORT_TO_REPOSITORY'
const RELEASE = 'RELEASE_DATA_FROM_FILESYSTEM'

type Counts = Omit<TaskStatus, 'LastUpdatedTime'>
const STATUS_SAVE_MS = 1000
/** Files an export task uploads at once. */
const EXPORT_PARALLEL = 8

export class TaskService extends EventEmitter {
  private readonly mutex = new Mutex()
  private running?: { id: string, controller: AbortController }
  private loop?: Promise<void>
  private stopped = false
  /** Epoch ms of the newest task: creation times are kept strictly increasing. */
  private lastCreation: number
  private readonly onDraChanged = (id: string): void => {
    this.batchImportOnCreate(id).catch((err: unknown) => this.o.log.error('queueing a batch import failed', { association: id, error: String(err) }))
  }

  private constructor (private readonly o: TaskServiceOptions, private readonly tasks: Map<string, TaskRecord>) {
    super()
    let last = 0
    for (const t of tasks.values()) last = Math.max(last, Math.round(t.CreationTime * 1000))
    this.lastCreation = last
  }

  /** Loads the tasks; one left CANCELING by a crash is CANCELED now (its run is gone). */
  static async open (o: TaskServiceOptions): Promise<TaskService> {
    const tasks = new Map<string, TaskRecord>()
    for await (const [, t] of o.store.entries<TaskRecord>(taskRange)) tasks.set(t.TaskId, t)
    const ops: Op[] = []
    for (const t of tasks.values()) {
      if (t.Lifecycle !== 'CANCELING') continue
      const next: TaskRecord = { ...t, Lifecycle: 'CANCELED', EndTime: Date.now() / 1000 }
      tasks.set(t.TaskId, next)
      ops.push({ type: 'put', key: taskKey(t.TaskId), value: next })
    }
    await o.store.batch(ops, { sync: true })
    // Failure files of interrupted runs: a task run again starts its report anew.
    await fs.promises.rm(o.dir, { recursive: true, force: true })
    return new TaskService(o, tasks)
  }

  /** Resumes the queue and watches DRAs for BatchImportMetaDataOnCreate. */
  start (): void {
    this.o.associations.on('changed', this.onDraChanged)
    for (const dra of this.o.associations.list()) this.onDraChanged(dra.AssociationId)
    const resumed = [...this.tasks.values()].filter((t) => t.Lifecycle === 'EXECUTING' || t.Lifecycle === 'PENDING').length
    if (resumed > 0) this.o.log.info('resuming data repository tasks', { count: resumed })
    this.kick()
  }

  /** Stops taking work; a running task is interrupted and stays EXECUTING for the next start. */
  async stop (): Promise<void> {
    this.stopped = true
    this.o.associations.off('changed', this.onDraChanged)
    this.running?.controller.abort()
    await this.loop
    await this.mutex.run(async () => undefined)
  }

  /** All tasks, newest first. */
  list (): TaskRecord[] { return [...this.tasks.values()].sort(newestFirst) }

  get (id: string): TaskRecord | undefined { return this.tasks.get(id) }

  describe (input: DescribeTasksInput): { DataRepositoryTasks: TaskRecord[], NextToken?: string } {
    const { page, nextToken } = describeTasks(this.list(), this.o.associations.identity.id, this.o.associations.list(), input)
    return { DataRepositoryTasks: page, ...(nextToken !== undefined ? { NextToken: nextToken } : {}) }
  }

  create (input: CreateTaskInput): Promise<{ DataRepositoryTask: TaskRecord }> {
    return this.mutex.run(async () => {
      const token = input.ClientRequestToken
      const fingerprint = fingerprintOf(input)
      if (token !== undefined) {
        const seen = await this.o.store.get<TaskToken>(taskTokenKey(token))
        if (seen !== undefined) {
          checkSameRequest(seen, fingerprint, token)
          const task = this.tasks.get(seen.TaskId)
          if (task !== undefined) return { DataRepositoryTask: task }
        }
      }
      this.check(input)
      const record = this.newRecord(input.Type, input.Paths ?? [], input.Report, input.Tags)
      if (input.ReleaseConfiguration !== undefined) record.ReleaseConfiguration = input.ReleaseConfiguration
      const ops: Op[] = token === undefined ? [] : [{ type: 'put', key: taskTokenKey(token), value: { fingerprint, TaskId: record.TaskId } satisfies TaskToken }]
      await this.insert(record, ops)
      return { DataRepositoryTask: record }
    })
  }

  cancel (id: string): Promise<{ Lifecycle: TaskLifecycle, TaskId: string }> {
    return this.mutex.run(async () => {
      const t = this.tasks.get(id)
      if (t === undefined) throw new FsxError('DataRepositoryTaskNotFound', `data repository task ${id} does not exist`)
      if (ENDED.has(t.Lifecycle)) throw new FsxError('DataRepositoryTaskEnded', `data repository task ${id} has already ended (${t.Lifecycle})`)
      if (t.Lifecycle === 'CANCELING') return { Lifecycle: t.Lifecycle, TaskId: id }
      if (this.running?.id === id) {
        // Files in flight finish; the import stops after the page it is working, a release after
        // the file in hand (§16.4).
        await this.put({ ...t, Lifecycle: 'CANCELING' }, true)
        this.running.controller.abort()
      } else {
        await this.put({ ...t, Lifecycle: 'CANCELED', EndTime: Date.now() / 1000 }, true)
      }
      this.o.log.info('task cancel requested', { task: id })
      return { Lifecycle: this.tasks.get(id)?.Lifecycle ?? 'CANCELED', TaskId: id }
    })
  }

  /** Refuses what cannot run, before anything is stored (a refused create changes nothing). */
  private check (input: CreateTaskInput): void {
    const fsId = this.o.associations.identity.id
    if (input.FileSystemId !== fsId) throw new FsxError('FileSystemNotFound', `file system ${input.FileSystemId} does not exist here (this is ${fsId})`)
    if (input.Type !== IMPORT && input.Type !== EXPORT && input.Type !== RELEASE) throw new FsxError('UnsupportedOperation', `${input.Type} tasks are for Amazon File Cache, which s3link is not`)
    if (input.CapacityToRelease !== undefined) throw badRequest('CapacityToRelease applies to AUTO_RELEASE_DATA tasks of Amazon File Cache only')
    if (input.ReleaseConfiguration !== undefined && input.Type !== RELEASE) throw badRequest(`ReleaseConfiguration applies to ${RELEASE} tasks only`)
    const dras = this.o.associations.list()
    if (dras.length === 0) throw badRequest(`file system ${fsId} has no data repository association: link a directory to S3 first`)
    if (input.Type === EXPORT) {
      for (const { dra } of exportTargets(dras, input.Paths ?? [])) {
        const conflict = autoExportConflict(dra)
        if (conflict !== undefined) throw badRequest(conflict)
      }
    }
    if (input.Type === RELEASE) releaseTargets(dras, input.Paths ?? [])
    for (const p of input.Type === IMPORT ? input.Paths ?? [] : []) {
      if (draHolding(dras, parseS3Path(p, 'Paths')) === undefined) {
        throw badRequest(`Paths: ${p} lies outside every data repository association of ${fsId} (${dras.map((d) => d.DataRepositoryPath).join(', ')})`)
      }
    }
    const r = input.Report
    if (!r.Enabled) return
    if (r.Path === undefined || r.Format === undefined || r.Scope === undefined) {
      throw badRequest(`Report: Path, Format (${REPORT_FORMAT}) and Scope (${REPORT_SCOPE}) are required when Enabled is true`)
    }
    if (draHolding(dras, parseS3Path(r.Path, 'Report.Path')) === undefined) {
      throw badRequest(`Report.Path ${r.Path} must lie inside the repository of a data repository association of ${fsId}`)
    }
  }

  private newRecord (type: TaskType, paths: string[], report: CompletionReport, tags?: Tag[]): TaskRecord {
    const { identity } = this.o.associations
    const TaskId = newTaskId()
    this.lastCreation = Math.max(Date.now(), this.lastCreation + 1)
    return {
      TaskId,
      Lifecycle: 'PENDING',
      Type: type,
      CreationTime: this.lastCreation / 1000,
      ResourceARN: taskArn(identity, TaskId),
      ...(tags !== undefined ? { Tags: tags } : {}),
      FileSystemId: identity.id,
      Paths: paths,
      Report: report
    }
  }

  /** Stores a new task with `ops` in one batch and wakes the runner. Call under the mutex. */
  private async insert (record: TaskRecord, ops: Op[]): Promise<void> {
    await this.o.store.batch([{ type: 'put', key: taskKey(record.TaskId), value: record }, ...ops], { sync: true })
    this.tasks.set(record.TaskId, record)
    this.emit('changed', record.TaskId)
    this.o.log.info('task created', { task: record.TaskId, type: record.Type, paths: record.Paths })
    this.kick()
  }

  /** Rewrites a task's record. Call under the mutex. */
  private async put (record: TaskRecord, sync = false): Promise<void> {
    await this.o.store.batch([{ type: 'put', key: taskKey(record.TaskId), value: record }], { sync })
    this.tasks.set(record.TaskId, record)
    this.emit('changed', record.TaskId)
  }

  private async batchImportOnCreate (draId: string): Promise<void> {
    await this.mutex.run(async () => {
      if (this.stopped) return
      const dra = this.o.associations.get(draId)
      if (dra === undefined) {
        await this.o.store.batch([{ type: 'del', key: batchImportKey(draId) }])
        return
      }
      if (!dra.BatchImportMetaDataOnCreate || dra.Lifecycle !== 'AVAILABLE') return
      if (await this.o.store.get(batchImportKey(draId)) !== undefined) return
      const record = this.newRecord(IMPORT, [dra.DataRepositoryPath], { Enabled: false })
      await this.insert(record, [{ type: 'put', key: batchImportKey(draId), value: record.TaskId }])
      this.o.log.info('batch import on create queued', { association: draId, task: record.TaskId })
    })
  }

  /** The task to run next: one left EXECUTING by a stop first, then the oldest PENDING. */
  private next (): TaskRecord | undefined {
    let best: TaskRecord | undefined
    for (const t of this.tasks.values()) {
      if (t.Lifecycle !== 'EXECUTING' && t.Lifecycle !== 'PENDING') continue
      if (best === undefined || rank(t) < rank(best) || (rank(t) === rank(best) && t.CreationTime < best.CreationTime)) best = t
    }
    return best
  }

  private kick (): void {
    if (this.loop !== undefined || this.stopped) return
    let healthy = true
    this.loop = (async () => {
      for (let t = this.next(); t !== undefined && !this.stopped; t = this.next()) {
        try {
          await this.run(t.TaskId)
        } catch (err) {
          // A store failure: stop here rather than spin on the same task; the next create retries.
          this.o.log.error('the task runner failed', { task: t.TaskId, error: String(err) })
          healthy = false
          return
        }
      }
    })().finally(() => {
      this.loop = undefined
      // A task created while the loop was finding nothing left to do.
      if (healthy && this.next() !== undefined) this.kick()
    })
  }

  private async run (id: string): Promise<void> {
    const controller = new AbortController()
    const { signal } = controller
    const task = await this.mutex.run(async () => {
      const t = this.tasks.get(id)
      if (t === undefined || (t.Lifecycle !== 'PENDING' && t.Lifecycle !== 'EXECUTING')) return undefined
      const now = Date.now() / 1000
      const next: TaskRecord = { ...t, Lifecycle: 'EXECUTING', StartTime: t.StartTime ?? now, Status: { TotalCount: 0, SucceededCount: 0, FailedCount: 0, LastUpdatedTime: now } }
      await this.put(next, true)
      this.running = { id, controller }
      this.o.log.info(t.Lifecycle === 'EXECUTING' ? 'task interrupted by a stop: running it again from the start' : 'task started', { task: id })
      return next
    })
    if (task === undefined) return

    const counts: Counts = { TotalCount: 0, SucceededCount: 0, FailedCount: 0 }
    let dirty = false
    const touch = (): void => { dirty = true }
    const timer = setInterval(() => {
      if (!dirty) return
      dirty = false
      this.saveStatus(id, counts).catch((err: unknown) => this.o.log.error('saving task counters failed', { task: id, error: String(err) }))
    }, STATUS_SAVE_MS)
    let failures: FailureFile | undefined
    let fatal: string | undefined
    try {
      if (task.Report.Enabled) failures = await FailureFile.create(path.join(this.o.dir, `${id}.csv`))
      if (task.Type === EXPORT) fatal = await this.runExport(task, signal, counts, touch, failures)
      else if (task.Type === RELEASE) fatal = await this.runRelease(task, signal, counts, touch, failures)
      else await this.runImport(task, signal, counts, touch, failures)
    } catch (err) {
      if (!signal.aborted) fatal = describeS3Error(err)
    } finally {
      clearInterval(timer)
    }

    if (signal.aborted && this.stopped && this.tasks.get(id)?.Lifecycle === 'EXECUTING') {
      await failures?.close().catch(() => undefined)
      await this.mutex.run(async () => { this.running = undefined })
      this.o.log.info('task interrupted by the stop: it runs again at the next start', { task: id, ...counts })
      return
    }
    await this.finish(task, counts, fatal, failures)
  }

  private async runImport (task: TaskRecord, signal: AbortSignal, counts: Counts, touch: () => void, failures?: FailureFile): Promise<void> {
    for (const target of importTargets(this.o.associations.list(), task.Paths)) {
      if (signal.aborted) break
      await this.o.imports.importDra(target.dra, {
        signal,
        onListed: (n) => { counts.TotalCount += n; touch() },
        onResult: (filePath, _key, outcome) => {
          touch()
          if (typeof outcome === 'string') { counts.SucceededCount++; return }
          // A HEAD cut short by the cancel: the object was not processed, it did not fail.
          if (signal.aborted && outcome.error === 'S3Error') return
          counts.FailedCount++
          failures?.add(filePath, outcome.error)
        }
      }, target.listPrefix)
    }
  }

  /**
   * Exports what changed under each path. TotalCount grows as the walk finds entries to export; an
   * entry removed before its turn leaves the count. Returns why the task fails as a whole: a path
   * that could not be walked (FSx: an invalid path fails the task), after the others were done.
   */
  private async runExport (task: TaskRecord, signal: AbortSignal, counts: Counts, touch: () => void, failures?: FailureFile): Promise<string | undefined> {
    // No Paths: the usable DRAs, as an import task takes them (named paths must all be usable).
    const dras = this.o.associations.list().filter((d) => task.Paths.length > 0 || IMPORTABLE.has(d.Lifecycle))
    if (dras.length === 0) throw new Error('no data repository association of the file system is AVAILABLE')
    const targets = exportTargets(dras, task.Paths)
    for (const { dra } of targets) {
      // Automatic export switched on since the task was created.
      const conflict = autoExportConflict(dra)
      if (conflict !== undefined) throw new Error(conflict)
    }
    const problems: string[] = []
    await this.o.exports.run(targets.map((t) => t.path), { parallel: EXPORT_PARALLEL, signal, on: counting(counts, touch, problems, failures) })
    return problems.length === 0 ? undefined : `Paths could not be exported: ${problems.join('; ')}`
  }

  /**
   * Releases what is eligible under each path, one file at a time (task-release.ts). TotalCount
   * counts the files found eligible (exported, clean, released not yet, old enough); files not
   * eligible are no part of the task, as FSx leaves them (§15). A file open when its turn comes
   * fails with ResourceBusy; one written, released or removed meanwhile leaves the count.
   */
  private async runRelease (task: TaskRecord, signal: AbortSignal, counts: Counts, touch: () => void, failures?: FailureFile): Promise<string | undefined> {
    const roots = releaseTargets(this.o.associations.list(), task.Paths)
    const days = task.ReleaseConfiguration?.DurationSinceLastAccess?.Value ?? 0
    // Last access is compared with the task's creation, not its start (FSx's wording, §15).
    const rule: AccessRule = { nowNs: BigInt(Math.round(task.CreationTime * 1000)) * 1_000_000n, days }
    const problems: string[] = []
    let bytes = 0
    await releaseTree(this.o.exports.filesystem, roots, { signal, rule, on: counting(counts, touch, problems, failures, (b) => { bytes += b }) })
    this.o.log.info('release task released', { task: task.TaskId, files: counts.SucceededCount, bytes })
    return problems.length === 0 ? undefined : `Paths could not be released: ${problems.join('; ')}`
  }

  /** Writes the report (when asked for), then the end state. */
  private async finish (task: TaskRecord, counts: Counts, fatal: string | undefined, failures?: FailureFile): Promise<void> {
    const id = task.TaskId
    let message = fatal
    if (message === undefined && counts.FailedCount > 0) {
      message = (task.Type === EXPORT
        ? `${counts.FailedCount} of ${counts.TotalCount} files could not be exported`
        : task.Type === RELEASE
          ? `${counts.FailedCount} of ${counts.TotalCount} files could not be released`
          : `${counts.FailedCount} of ${counts.TotalCount} objects could not be imported`) +
        (failures !== undefined ? ': the completion report lists them' : '')
    }
    if (failures !== undefined) {
      const where = reportLocation(task)
      try {
        await failures.close()
        await uploadFile(this.o.clients, where.bucket, where.key, failures.file, 'text/csv')
      } catch (err) {
        const problem = `the completion report could not be written to s3://${where.bucket}/${where.key}: ${describeS3Error(err)}`
        this.o.log.error('writing a completion report failed (S3CompletionReportUploadFailure)', { task: id, error: problem })
        message = message === undefined ? problem : `${message}; ${problem}`
      }
      await failures.remove()
    }
    await this.mutex.run(async () => {
      const current = this.tasks.get(id) ?? task
      const lifecycle: TaskLifecycle = current.Lifecycle === 'CANCELING' ? 'CANCELED' : message !== undefined ? 'FAILED' : 'SUCCEEDED'
      const now = Date.now() / 1000
      const next: TaskRecord = { ...current, Lifecycle: lifecycle, EndTime: now, Status: { ...counts, LastUpdatedTime: now } }
      delete next.FailureDetails
      if (lifecycle === 'FAILED' && message !== undefined) next.FailureDetails = failure(message)
      await this.put(next, true)
      this.running = undefined
      this.o.log.info('task ended', { task: id, lifecycle, ...counts, ...(next.FailureDetails !== undefined ? { failure: next.FailureDetails.Message } : {}) })
    })
  }

  private async saveStatus (id: string, counts: Counts): Promise<void> {
    await this.mutex.run(async () => {
      const t = this.tasks.get(id)
      if (t === undefined || this.running?.id !== id || ENDED.has(t.Lifecycle)) return
      await this.put({ ...t, Status: { ...counts, LastUpdatedTime: Date.now() / 1000 } })
    })
  }
}

const rank = (t: TaskRecord): number => t.Lifecycle === 'EXECUTING' ? 0 : 1

/**
 * `{Report.Path}/task-{id}/report.csv`: FSx's folder is `task-` and the id's hex digits, which is
 * the TaskId itself (ids begin with `task-`); FSx names import reports report.csv, export and
 * release reports failures.csv (§18).
 */
function reportLocation (task: TaskRecord): { bucket: string, key: string } {
  const p = parseS3Path(task.Report.Path ?? '', 'Report.Path')
  const prefix = p.prefix.replace(/\/+$/, '')
  return { bucket: p.bucket, key: `${prefix === '' ? '' : prefix + '/'}${task.TaskId}/${reportName(task.Type)}` }
}

/** FSx runs no export task on a DRA that exports automatically (§12.2): why, or undefined. */
function autoExportConflict (dra: DraRecord): string | undefined {
  const events = exportEvents(dra)
  if (events.length === 0) return undefined
  return `automatic export and export data repository tasks cannot run at the same time: association ${dra.AssociationId} (${dra.FileSystemPath}) ` +
    `exports automatically (AutoExportPolicy ${events.join(',')}); remove its AutoExportPolicy events to run an export task`
}

/**
 * A task's tree walk counted into its Status: each file found adds to TotalCount, and its result
 * to SucceededCount or FailedCount (and failures.csv); a file gone meanwhile leaves the count;
 * paths that could not be walked go to `problems`.
 */
function counting (counts: Counts, touch: () => void, problems: string[], failures?: FailureFile, succeeded?: (bytes: number) => void): {
  problem: (path: string, error: unknown) => void
  found: () => void
  result: (path: string, result: { gone: true } | { ok: true, bytes: number } | { ok: false, code: string }) => void
} {
  return {
    problem: (p, err) => { problems.push(`${p.slice(1)}: ${err instanceof Error ? err.message : String(err)}`) },
    found: () => { counts.TotalCount++; touch() },
    result: (p, result) => {
      touch()
      if ('gone' in result) counts.TotalCount--
      else if (result.ok) {
        counts.SucceededCount++
        succeeded?.(result.bytes)
      } else {
        counts.FailedCount++
        failures?.add(p.slice(1), result.code) // FilePath is relative to the file system root (§18)
      }
    }
  }
}
