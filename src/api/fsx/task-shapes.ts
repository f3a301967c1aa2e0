/**
 * The request shapes of the data repository task operations, from botocore's fsx/2018-03-01 model
 * (spec/fsx-dra.md §16): lengths, patterns and enums as the model gives them; unknown fields are
 * refused. What the model allows but s3link cannot do (File Cache's AUTO_RELEASE_DATA and
 * CapacityToRelease) passes here and is refused by the task service with FSx's error for it.
 */
import { z } from 'zod'
import { TASK_TYPES, REPORT_FORMAT, REPORT_SCOPE } from '../../sync/task-record'
import { ArchivePath, ClientRequestToken, FileSystemId, NextToken, Tags } from './shapes'

// DataRepositoryTaskPath: ^[^\u0000\u0085\u2028\u2029\r\n]{0,4096}$
const TaskPath = z.string().max(4096).refine((s) => !/[\u0000\u0085\u2028\u2029\r\n]/.test(s), 'must not contain NUL, CR, LF, U+0085, U+2028 or U+2029')
export const TaskId = z.string().min(12).max(128).regex(/^(task-[0-9a-f]{17,})$/, 'must be task- followed by at least 17 hex digits')

export const CompletionReport = z.object({
  Enabled: z.boolean(),
  Path: ArchivePath.optional(),
  Format: z.literal(REPORT_FORMAT).optional(),
  Scope: z.literal(REPORT_SCOPE).optional()
}).strict()

export const CreateDataRepositoryTask = z.object({
  Type: z.enum(TASK_TYPES),
  Paths: z.array(TaskPath).max(100).optional(),
  FileSystemId,
  Report: CompletionReport,
  ClientRequestToken: ClientRequestToken.optional(),
  Tags: Tags.optional(),
  CapacityToRelease: z.number().int().min(1).max(2147483647).optional(),
  ReleaseConfiguration: z.object({
    // The model marks both optional; FSx's documentation says each is required (§15).
    DurationSinceLastAccess: z.object({ Unit: z.enum(['DAYS']), Value: z.number().int().min(0).max(2147483647) }).strict().optional()
  }).strict().optional()
}).strict()

const FilterValue = z.string().min(1).max(128).regex(/^[0-9a-zA-Z*.\\/?\-_]*$/, 'may contain only letters, digits and * . \\ / ? - _')
const TaskFilter = z.object({
  Name: z.enum(['file-system-id', 'task-lifecycle', 'data-repository-association-id', 'file-cache-id']).optional(),
  Values: z.array(FilterValue).max(20).optional()
}).strict()

export const DescribeDataRepositoryTasks = z.object({
  TaskIds: z.array(TaskId).max(50).optional(),
  Filters: z.array(TaskFilter).max(3).optional(),
  MaxResults: z.number().int().min(1).max(2147483647).optional(),
  NextToken: NextToken.optional()
}).strict()

export const CancelDataRepositoryTask = z.object({ TaskId }).strict()
