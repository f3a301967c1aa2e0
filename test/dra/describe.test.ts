/**
 * DescribeDataRepositoryAssociations as a pure function (spec/fsx-dra.md §7): ids, filters
 * (file-system-id, data-repository-type; AND between filters, OR within one), pages of MaxResults
 * with a NextToken that survives deletions between calls.
 */
import t, { type Test } from 'tap'
import { describeAssociations } from '../../src/dra/describe'
import type { DraRecord } from '../../src/dra/association'
import { FsxError } from '../../src/dra/errors'

const FS = 'fs-0123456789abcdef0'

function record (i: number, time = 1700000000 + i + 0.125): DraRecord {
  return {
    AssociationId: `dra-${i.toString(16).padStart(17, '0')}`,
    Lifecycle: 'AVAILABLE',
    FileSystemPath: `/ns${i}`,
    DataRepositoryPath: `s3://bucket/p${i}/`,
    BatchImportMetaDataOnCreate: false,
    ImportedFileChunkSize: 1024,
    CreationTime: time
  }
}

const ids = (rs: DraRecord[]): string[] => rs.map((r) => r.AssociationId)

function fails (t: Test, fn: () => unknown, type: string, message: RegExp): void {
  try {
    fn()
    t.fail(`accepted, expected ${type}`)
  } catch (err) {
    t.ok(err instanceof FsxError && err.type === type, `${type}`)
    t.match((err as Error).message, message)
  }
}

t.test('no ids and no filters: everything, in creation order', async (t) => {
  const all = [1, 2, 3].map((i) => record(i))
  const r = describeAssociations(all, FS, {})
  t.same(ids(r.page), ids(all))
  t.equal(r.nextToken, undefined)
  t.same(describeAssociations([], FS, {}).page, [], 'none')
})

t.test('AssociationIds', async (t) => {
  const all = [1, 2, 3, 4].map((i) => record(i))
  t.same(ids(describeAssociations(all, FS, { AssociationIds: [all[2].AssociationId, all[0].AssociationId] }).page), [all[0].AssociationId, all[2].AssociationId])
  t.same(ids(describeAssociations(all, FS, { AssociationIds: [] }).page), ids(all), 'an empty list means all')
  fails(t, () => describeAssociations(all, FS, { AssociationIds: [all[0].AssociationId, 'dra-0000000000000ffff'] }),
    'DataRepositoryAssociationNotFound', /dra-0000000000000ffff does not exist/)
})

t.test('filters', async (t) => {
  const all = [1, 2, 3].map((i) => record(i))
  t.same(ids(describeAssociations(all, FS, { Filters: [{ Name: 'file-system-id', Values: [FS] }] }).page), ids(all))
  t.same(ids(describeAssociations(all, FS, { Filters: [{ Name: 'file-system-id', Values: ['fs-0000000000000000f', FS] }] }).page), ids(all), 'values are OR-ed')
  fails(t, () => describeAssociations(all, FS, { Filters: [{ Name: 'file-system-id', Values: ['fs-0000000000000000f'] }] }), 'FileSystemNotFound', /fs-0000000000000000f does not exist here/)
  t.same(ids(describeAssociations(all, FS, { Filters: [{ Name: 'data-repository-type', Values: ['S3'] }] }).page), ids(all))
  t.same(describeAssociations(all, FS, { Filters: [{ Name: 'data-repository-type', Values: ['NFS'] }] }).page, [], 'no NFS repositories here')
  t.same(describeAssociations(all, FS, { Filters: [{ Name: 'file-system-id', Values: [FS] }, { Name: 'data-repository-type', Values: ['NFS'] }] }).page, [], 'filters are AND-ed')
  fails(t, () => describeAssociations(all, FS, { Filters: [{ Name: 'data-repository-type', Values: ['EFS'] }] }), 'InvalidDataRepositoryType', /EFS is not one of S3, NFS/)
  fails(t, () => describeAssociations(all, FS, { Filters: [{ Name: 'backup-type', Values: ['AUTOMATIC'] }] }), 'BadRequest', /filter backup-type does not apply/)
  fails(t, () => describeAssociations(all, FS, { Filters: [{ Values: ['x'] }] }), 'BadRequest', /does not apply/)
  fails(t, () => describeAssociations(all, FS, { Filters: [{ Name: 'file-system-id' }] }), 'BadRequest', /filter file-system-id needs at least one value in Values/)
  fails(t, () => describeAssociations(all, FS, { Filters: [{ Name: 'data-repository-type', Values: [] }] }), 'BadRequest', /filter data-repository-type needs at least one value/)
  // ids and filters combine.
  t.same(ids(describeAssociations(all, FS, { AssociationIds: [all[1].AssociationId], Filters: [{ Name: 'data-repository-type', Values: ['S3'] }] }).page), [all[1].AssociationId])
})

t.test('pages of MaxResults, resumed by NextToken', async (t) => {
  const all = Array.from({ length: 7 }, (_, i) => record(i + 1))
  const seen: string[] = []
  let token: string | undefined
  let pages = 0
  do {
    const r = describeAssociations(all, FS, { MaxResults: 3, ...(token !== undefined ? { NextToken: token } : {}) })
    t.ok(r.page.length <= 3)
    seen.push(...ids(r.page))
    token = r.nextToken
    if (token !== undefined) t.match(token, /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/, 'the token fits the model\'s NextToken pattern')
    pages++
  } while (token !== undefined)
  t.equal(pages, 3)
  t.same(seen, ids(all), 'every association once, in order')

  const exact = describeAssociations(all.slice(0, 6), FS, { MaxResults: 3 })
  const second = describeAssociations(all.slice(0, 6), FS, { MaxResults: 3, NextToken: exact.nextToken })
  t.equal(second.page.length, 3)
  t.equal(second.nextToken, undefined, 'no token after a full last page')

  t.equal(describeAssociations(Array.from({ length: 30 }, (_, i) => record(i + 1)), FS, {}).page.length, 25, 'at most 25 by default')
})

t.test('NextToken survives changes between pages', async (t) => {
  const all = Array.from({ length: 6 }, (_, i) => record(i + 1))
  const first = describeAssociations(all, FS, { MaxResults: 2 })
  t.same(ids(first.page), ids(all.slice(0, 2)))
  // The last one returned is deleted, and one is created after the rest.
  const changed = [all[0], ...all.slice(2), record(99)]
  const next = describeAssociations(changed, FS, { MaxResults: 2, NextToken: first.nextToken })
  t.same(ids(next.page), ids(all.slice(2, 4)), 'resumes after the deleted one, skipping none')
  // Same creation time: the id breaks the tie.
  const twins = [record(1, 1700000000.5), record(2, 1700000000.5), record(3, 1700000000.5)]
  const a = describeAssociations(twins, FS, { MaxResults: 1 })
  const b = describeAssociations(twins, FS, { MaxResults: 1, NextToken: a.nextToken })
  t.same(ids([...a.page, ...b.page]), ids(twins.slice(0, 2)))
})

t.test('a NextToken this API did not return', async (t) => {
  const all = [1, 2].map((i) => record(i))
  fails(t, () => describeAssociations(all, FS, { NextToken: Buffer.from('garbage').toString('base64') }), 'BadRequest', /NextToken is not a token this API returned/)
  fails(t, () => describeAssociations(all, FS, { NextToken: 'AAAA' }), 'BadRequest', /NextToken/)
})
