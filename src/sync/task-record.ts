/**
 * A data repository task as FSx defines it (spec/fsx-dra.md §16.2). Like DRAs, the record is
 * stored in the FSx shape itself: Describe returns it as it is.
 */
import { randomBytes } from 'node:crypto'
import type { FsIdentity, Tag } from '../dra/association'

export const TASK_TYPES = ['EXPORT_TO_REPOSITORY', 'IMPORT_METADATA_FROM_REPOSITORY', 'RELEASE_DATA_FROM_FILESYSTEM', 'AUTO_RELEASE_DATA'] as const
export type TaskType = typeof TASK_TYPES[number]

export const TASK_LIFECYCLES = ['PENDING', 'EXECUTING', 'FAILED', 'SUCCEEDED', 'CANCELED', 'CANCELING'] as const
export type TaskLifecycle = typeof TASK_LIFECYCLES[number]

/** A task in one of these is over: it cannot be canceled and never changes again. */
export const ENDED: ReadonlySet<TaskLifecycle> = new Set(['FAILED', 'SUCCEEDED', 'CANCELED'])

export const REPORT_FORMAT = 'REPORT_CSV_20191124'
export const REPORT_SCOPE = 'FAILED_FILES_ONLY'

/** The report's file name: report.csv for import tasks, failures.csv for export and release tasks (§18). */
export const reportName = (type: string): string => type === 'IMPORT_METADATA_FROM_REPOSITORY' ? 'report.csv' : 'failures.csv'

export interface CompletionReport { Enabled: boolean, Path?: string, Format?: typeof REPORT_FORMAT, Scope?: typeof REPORT_SCOPE }

export interface TaskStatus {
  TotalCount: number
  SucceededCount: number
  FailedCount: number
  /** Epoch seconds, like every FSx timestamp. */
  LastUpdatedTime: number
}

export interface TaskRecord {
  TaskId: string
  Lifecycle: TaskLifecycle
  Type: TaskType
  /** Epoch seconds with milliseconds; strictly increasing per file system (tasks run in this order). */
  CreationTime: number
  StartTime?: number
  EndTime?: number
  ResourceARN: string
  Tags?: Tag[]
  FileSystemId: string
  /** As given: S3 paths for import tasks, file-system paths relative to the mount for export and release tasks; empty = every DRA. */
  Paths: string[]
  FailureDetails?: { Message: string }
  /** Set when the task starts executing. */
  Status?: TaskStatus
  Report: CompletionReport
  /** Release tasks: as given (absent: every eligible file, whatever its access time). */
  ReleaseConfiguration?: ReleaseConfiguration
}

/** FSx's DurationSinceLastAccess (§15): only DAYS exists; Value ≥ 0, 0 = every exported file. */
export interface ReleaseConfiguration { DurationSinceLastAccess?: { Unit: 'DAYS', Value: number } }

/** `task-` and 17 hex digits, as FSx's ids. */
export const newTaskId = (): string => 'task-' + randomBytes(9).toString('hex').slice(0, 17)

export const taskArn = (fs: FsIdentity, id: string): string => `arn:aws:fsx:${fs.region}:${fs.account}:task/${id}`

/** FSx's ErrorMessage is at most 256 characters. */
export const failure = (message: string): { Message: string } => ({ Message: message.slice(0, 256) })
