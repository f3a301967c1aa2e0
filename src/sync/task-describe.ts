/**
 * DescribeDataRepositoryTasks (spec/fsx-dra.md §16.3): ids and filters combine with AND, the values
 * of one filter with OR; newest first (as the console shows them), pages of MaxResults, at most 50.
 * NextToken is the base64 of the last task returned (creation time and id), so a page boundary
 * survives tasks created between calls.
 */
import type { DraRecord } from '../dra/association'
import { FsxError, badRequest } from '../dra/errors'
import { TASK_LIFECYCLES, type TaskRecord } from './task-record'
import { draOfFsPath, parseExportPath, parseS3Path, prefixInside, releaseTargets } from './task-targets'

export interface DescribeTasksInput {
  TaskIds?: string[]
  Filters?: Array<{ Name?: string, Values?: string[] }>
  MaxResults?: number
  NextToken?: string
}

const PAGE_MAX = 50

/** `all` newest first; `dras` the file system's associations (for the association filter). */
export function describeTasks (all: TaskRecord[], fsId: string, dras: DraRecord[], input: DescribeTasksInput): { page: TaskRecord[], nextToken?: string } {
  let selected = all
  if (input.TaskIds !== undefined && input.TaskIds.length > 0) {
    const missing = input.TaskIds.filter((id) => !all.some((t) => t.TaskId === id))
    if (missing.length > 0) throw new FsxError('DataRepositoryTaskNotFound', `data repository task ${missing.join(', ')} does not exist`)
    selected = all.filter((t) => input.TaskIds?.includes(t.TaskId))
  }
  for (const filter of input.Filters ?? []) {
    const values = filter.Values ?? []
    if (values.length === 0 && filter.Name !== undefined) throw badRequest(`filter ${filter.Name} needs at least one value in Values`)
    switch (filter.Name) {
      case 'file-system-id':
        if (!values.includes(fsId)) throw new FsxError('FileSystemNotFound', `file system ${values.join(', ')} does not exist here (this is ${fsId})`)
        break
      case 'task-lifecycle': {
        const unknown = values.find((v) => !(TASK_LIFECYCLES as readonly string[]).includes(v))
        if (unknown !== undefined) throw badRequest(`task-lifecycle ${unknown} is not one of ${TASK_LIFECYCLES.join(', ')}`)
        selected = selected.filter((t) => values.includes(t.Lifecycle))
        break
      }
      case 'data-repository-association-id': {
        const wanted = dras.filter((d) => values.includes(d.AssociationId))
        selected = selected.filter((t) => wanted.some((d) => covers(t, d)))
        break
      }
      case 'file-cache-id':
        // s3link has no file caches: no task belongs to one.
        selected = []
        break
      default:
        throw badRequest('each filter needs a Name: file-system-id, task-lifecycle, data-repository-association-id or file-cache-id')
    }
  }
  let start = 0
  if (input.NextToken !== undefined) {
    const m = /^(\d+(?:\.\d+)?) (task-[0-9a-f]{17,})$/.exec(Buffer.from(input.NextToken, 'base64').toString('utf8'))
    if (m === null) throw badRequest('NextToken is not a token this API returned')
    const [time, id] = [Number(m[1]), m[2]]
    start = selected.findIndex((t) => t.CreationTime < time || (t.CreationTime === time && t.TaskId < id))
    if (start < 0) start = selected.length
  }
  const size = Math.min(input.MaxResults ?? PAGE_MAX, PAGE_MAX)
  const page = selected.slice(start, start + size)
  const more = start + size < selected.length
  return { page, ...(more ? { nextToken: Buffer.from(`${page[page.length - 1].CreationTime} ${page[page.length - 1].TaskId}`).toString('base64') } : {}) }
}

/** A task without Paths covers every DRA; otherwise the DRAs its paths lie in (S3 or file-system paths by type). */
function covers (t: TaskRecord, d: DraRecord): boolean {
  if (t.Paths.length === 0) return true
  return t.Paths.some((p) => {
    try {
      if (t.Type === 'EXPORT_TO_REPOSITORY') return draOfFsPath([d], parseExportPath(p)) !== undefined
      if (t.Type === 'RELEASE_DATA_FROM_FILESYSTEM') return releaseTargets([d], [p]).length > 0
      return prefixInside(d, parseS3Path(p, 'Paths')) !== undefined
    } catch { return false }
  })
}

/** Newest first, then by id (the order pages follow). */
export function newestFirst (a: TaskRecord, b: TaskRecord): number {
  return b.CreationTime - a.CreationTime || (a.TaskId < b.TaskId ? 1 : a.TaskId > b.TaskId ? -1 : 0)
}
