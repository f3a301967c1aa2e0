/**
 * DescribeDataRepositoryAssociations (spec/fsx-dra.md §7): ids and filters combine with AND, the
 * values of one filter with OR; pages of MaxResults (default and at most 25) in creation order.
 * NextToken is the base64 of the last association returned (creation time and id), so a page
 * boundary survives creations and deletions between calls.
 */
import type { DraRecord } from './association'
import { FsxError, badRequest } from './errors'

export interface DescribeInput {
  AssociationIds?: string[]
  Filters?: Array<{ Name?: string, Values?: string[] }>
  MaxResults?: number
  NextToken?: string
}

const PAGE_MAX = 25
const REPOSITORY_TYPES = ['S3', 'NFS']

export function describeAssociations (all: DraRecord[], fsId: string, input: DescribeInput): { page: DraRecord[], nextToken?: string } {
  let selected = all
  if (input.AssociationIds !== undefined && input.AssociationIds.length > 0) {
    const missing = input.AssociationIds.filter((id) => !all.some((r) => r.AssociationId === id))
    if (missing.length > 0) throw new FsxError('DataRepositoryAssociationNotFound', `data repository association ${missing.join(', ')} does not exist`)
    selected = all.filter((r) => input.AssociationIds?.includes(r.AssociationId))
  }
  for (const filter of input.Filters ?? []) {
    const values = filter.Values ?? []
    // A filter with no values would match nothing; say so rather than answer an empty list.
    if (values.length === 0 && filter.Name !== undefined) throw badRequest(`filter ${filter.Name} needs at least one value in Values`)
    switch (filter.Name) {
      case 'file-system-id':
        if (!values.includes(fsId)) throw new FsxError('FileSystemNotFound', `file system ${values.join(', ')} does not exist here (this is ${fsId})`)
        break
      case 'data-repository-type': {
        const unknown = values.find((v) => !REPOSITORY_TYPES.includes(v))
        if (unknown !== undefined) throw new FsxError('InvalidDataRepositoryType', `data repository type ${unknown} is not one of ${REPOSITORY_TYPES.join(', ')}`)
        if (!values.includes('S3')) selected = []
        break
      }
      default:
        throw badRequest(`filter ${String(filter.Name)} does not apply to data repository associations (use file-system-id or data-repository-type)`)
    }
  }
  let start = 0
  if (input.NextToken !== undefined) {
    const m = /^(\d+(?:\.\d+)?) (dra-[0-9a-f]{8,})$/.exec(Buffer.from(input.NextToken, 'base64').toString('utf8'))
    if (m === null) throw badRequest('NextToken is not a token this API returned')
    // Resume after the last one returned, by position in the order, even if it was deleted since.
    const [time, id] = [Number(m[1]), m[2]]
    start = selected.findIndex((r) => r.CreationTime > time || (r.CreationTime === time && r.AssociationId > id))
    if (start < 0) start = selected.length
  }
  const size = Math.min(input.MaxResults ?? PAGE_MAX, PAGE_MAX)
  const page = selected.slice(start, start + size)
  const more = start + size < selected.length
  return { page, ...(more ? { nextToken: pageToken(page[page.length - 1]) } : {}) }
}

const pageToken = (r: DraRecord): string => Buffer.from(`${r.CreationTime} ${r.AssociationId}`).toString('base64')
