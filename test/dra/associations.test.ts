/**
 * The DRA table and its durable request queue over a real LevelDB store (spec/fsx-dra.md §4–6,
 * §9–10): every rule refuses without changing anything, accepted requests queue in order and
 * survive a reopen, ClientRequestToken replays, and the lifecycle settles through complete/settle.
 */
import t, { type Test } from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Store } from '../../src/store/db'
import { Associations, type CreateInput, type PathKind } from '../../src/dra/associations'
import { FsxError } from '../../src/dra/errors'

const FS = { id: 'fs-0123456789abcdef0', region: 'us-east-1', account: '000000000000' }

interface Ctx { store: Store, dras: Associations, dir: string, kinds: Map<string, PathKind> }

async function open (t: Test, dir?: string): Promise<Ctx> {
  const root = dir ?? await fs.promises.mkdtemp(path.join(os.tmpdir(), 's3link-dra-'))
  if (dir === undefined) t.teardown(() => fs.promises.rm(root, { recursive: true, force: true }))
  const store = await Store.open(path.join(root, 'db'))
  t.teardown(() => store.close())
  const kinds = new Map<string, PathKind>()
  const dras = await Associations.open(store, FS, async (p) => kinds.get(p) ?? 'missing')
  return { store, dras, dir: root, kinds }
}

const input = (fsPath: string, repo: string, more: Partial<CreateInput> = {}): CreateInput =>
  ({ FileSystemId: FS.id, FileSystemPath: fsPath, DataRepositoryPath: repo, ...more })

async function refused (t: Test, p: Promise<unknown>, type: string, message: RegExp, extra?: Record<string, string>): Promise<void> {
  try {
    await p
    t.fail(`accepted, expected ${type}`)
  } catch (err) {
    t.ok(err instanceof FsxError, 'an FsxError')
    t.equal((err as FsxError).type, type)
    t.match((err as FsxError).message, message)
    if (extra !== undefined) t.same((err as FsxError).extra, extra)
  }
}

/** Everything the store holds under the DRA keys, to prove a refusal wrote nothing. */
async function dump (store: Store): Promise<string> {
  const out: string[] = []
  for await (const [k, v] of store.entries({ gt: 'dra', lt: 'drb' })) out.push(`${k}=${JSON.stringify(v)}`)
  return out.join('\n')
}

/** Works every queued request as the worker would with a healthy bucket. */
async function settleAll (dras: Associations): Promise<void> {
  for (let q = dras.nextRequest(); q !== undefined; q = dras.nextRequest()) {
    await dras.complete(q, q.op === 'delete' ? 'removed' : { lifecycle: 'AVAILABLE' })
  }
}

t.test('create answers CREATING at once and queues one request', async (t) => {
  const { dras } = await open(t)
  const queued: unknown[] = []
  dras.on('queued', (q) => queued.push(q))
  const before = Date.now() / 1000
  const answer = await dras.create(input('/ns1/path1/', 's3://mybucket/myprefix'))
  const a = answer.Association as Record<string, unknown>
  t.match(a, {
    AssociationId: /^dra-[0-9a-f]{17}$/,
    FileSystemId: FS.id,
    Lifecycle: 'CREATING',
    FileSystemPath: '/ns1/path1/',
    DataRepositoryPath: 's3://mybucket/myprefix/',
    BatchImportMetaDataOnCreate: false,
    ImportedFileChunkSize: 1024
  })
  t.equal(a.ResourceARN, `arn:aws:fsx:us-east-1:000000000000:association/${FS.id}/${String(a.AssociationId)}`)
  t.notOk('S3' in a, 'no import or export policy unless given')
  t.notOk('Tags' in a)
  t.notOk('FailureDetails' in a)
  t.ok((a.CreationTime as number) >= before - 1 && (a.CreationTime as number) <= Date.now() / 1000 + 1, 'CreationTime in epoch seconds')
  t.equal(dras.pendingRequests(), 1)
  t.match(dras.nextRequest(), { op: 'create', AssociationId: a.AssociationId, seq: 1 })
  t.equal(queued.length, 1)

  const withPolicy = await dras.create(input('/ns2', 's3://mybucket/other/', {
    S3: { AutoImportPolicy: { Events: ['NEW', 'CHANGED', 'DELETED'] } }, ImportedFileChunkSize: 2048, BatchImportMetaDataOnCreate: true, Tags: [{ Key: 'k', Value: 'v' }]
  }))
  t.match(withPolicy.Association, { S3: { AutoImportPolicy: { Events: ['NEW', 'CHANGED', 'DELETED'] } }, ImportedFileChunkSize: 2048, BatchImportMetaDataOnCreate: true, Tags: [{ Key: 'k', Value: 'v' }] })
  t.notOk('AutoExportPolicy' in ((withPolicy.Association as { S3: object }).S3), 'only the policy given')
})

t.test('oldest first is creation order, even within one millisecond', async (t) => {
  const { dras } = await open(t)
  const ids: string[] = []
  for (let i = 1; i <= 6; i++) ids.push(((await dras.create(input(`/ns${i}`, `s3://mybucket/p${i}/`))).Association as { AssociationId: string }).AssociationId)
  t.same(dras.list().map((r) => r.AssociationId), ids)
  const times = dras.list().map((r) => r.CreationTime)
  t.ok(times.every((x, i) => i === 0 || x > times[i - 1]), 'creation times are unique and increasing')
})

t.test('each rule refuses and changes nothing', async (t) => {
  const { dras, store, kinds } = await open(t)
  await dras.create(input('/ns1', 's3://mybucket/p/'))
  await settleAll(dras)
  const before = await dump(store)

  await refused(t, dras.create(input('/x', 's3://mybucket/x/', { FileSystemId: 'fs-00000000000000001' })), 'FileSystemNotFound', /fs-00000000000000001 does not exist/)
  await refused(t, dras.create({ FileSystemId: FS.id, DataRepositoryPath: 's3://mybucket/x/' }), 'BadRequest', /FileSystemPath is required/)
  await refused(t, dras.create(input('ns2', 's3://mybucket/x/')), 'BadRequest', /must begin with \//)
  await refused(t, dras.create(input('/ns2', 'mybucket/x/')), 'BadRequest', /s3:\/\/bucket\//)
  await refused(t, dras.create(input('/ns1/ns2', 's3://mybucket/x/')), 'BadRequest', /FileSystemPath \/ns1\/ns2 overlaps \/ns1 of dra-/)
  await refused(t, dras.create(input('/ns1/', 's3://mybucket/x/')), 'BadRequest', /overlaps \/ns1/)
  await refused(t, dras.create(input('/ns2', 's3://mybucket/p/sub')), 'BadRequest', /DataRepositoryPath s3:\/\/mybucket\/p\/sub\/ overlaps s3:\/\/mybucket\/p\//)
  await refused(t, dras.create(input('/ns2', 's3://mybucket')), 'BadRequest', /overlaps s3:\/\/mybucket\/p\//)
  await refused(t, dras.create(input('/', 's3://other/')), 'BadRequest', /FileSystemPath \/ can only be the first and only/)
  kinds.set('/file', 'other')
  await refused(t, dras.create(input('/file', 's3://other/')), 'BadRequest', /\/file exists and is not a directory/)
  t.equal(await dump(store), before, 'the store is unchanged')
  t.equal(dras.list().length, 1)
  t.equal(dras.pendingRequests(), 0)

  // Not overlaps: a sibling whose name extends, another prefix, another bucket.
  await dras.create(input('/ns10', 's3://mybucket/p2/'))
  await dras.create(input('/ns3', 's3://otherbucket/p/'))
  t.equal(dras.list().length, 3)
})

t.test('/ only as the first and only association', async (t) => {
  const { dras } = await open(t)
  await dras.create(input('/', 's3://mybucket/'))
  await refused(t, dras.create(input('/ns1', 's3://otherbucket/')), 'BadRequest', /FileSystemPath \/ can only be the first and only data repository association \(dra-[0-9a-f]+ links \/\)/)
  await settleAll(dras)
  const root = dras.list()[0]
  await dras.delete({ AssociationId: root.AssociationId })
  await refused(t, dras.create(input('/ns1', 's3://otherbucket/')), 'BadRequest', /can only be the first and only/, undefined)
  await settleAll(dras)
  t.equal(dras.list().length, 0, 'once the root DRA is gone')
  await dras.create(input('/ns1', 's3://otherbucket/'))
  await refused(t, dras.create(input('/', 's3://mybucket/')), 'BadRequest', /FileSystemPath \/ can only be the first and only data repository association \(dra-[0-9a-f]+ links \/ns1\)/)
})

t.test('at most 8 associations, at most 8 queued requests', async (t) => {
  const { dras, store } = await open(t)
  for (let i = 1; i <= 8; i++) await dras.create(input(`/ns${i}`, `s3://mybucket/p${i}/`))
  t.equal(dras.pendingRequests(), 8)
  let before = await dump(store)
  await refused(t, dras.create(input('/ns9', 's3://mybucket/p9/')), 'ServiceLimitExceeded', /at most 8 data repository associations/, { Limit: 'DATA_REPOSITORY_ASSOCIATIONS' })
  const first = dras.list()[0].AssociationId
  await refused(t, dras.update({ AssociationId: first, ImportedFileChunkSize: 7 }), 'ServiceLimitExceeded', /8 data repository association requests are already queued/, { Limit: 'DATA_REPOSITORY_ASSOCIATION_REQUESTS' })
  await refused(t, dras.delete({ AssociationId: first }), 'ServiceLimitExceeded', /already queued/)
  t.equal(await dump(store), before, 'the 9th request changed nothing')

  await dras.complete(dras.nextRequest()!, { lifecycle: 'AVAILABLE' })
  t.equal(dras.pendingRequests(), 7)
  await dras.update({ AssociationId: first, ImportedFileChunkSize: 7 })
  t.equal(dras.pendingRequests(), 8)
  await settleAll(dras)
  before = await dump(store)
  await refused(t, dras.create(input('/ns9', 's3://mybucket/p9/')), 'ServiceLimitExceeded', /at most 8/)
  t.equal(await dump(store), before)
  // A DELETING association still counts until it is gone.
  await dras.delete({ AssociationId: first })
  await refused(t, dras.create(input('/ns9', 's3://mybucket/p9/')), 'ServiceLimitExceeded', /at most 8/)
  await settleAll(dras)
  await dras.create(input('/ns9', 's3://mybucket/p9/'))
  t.equal(dras.list().length, 8)
})

t.test('ClientRequestToken: a replay gets the first answer, other parameters are refused', async (t) => {
  const { dras, store } = await open(t)
  const first = await dras.create(input('/ns1', 's3://mybucket/p/', { ClientRequestToken: 'tok-1' }))
  const again = await dras.create(input('/ns1', 's3://mybucket/p/', { ClientRequestToken: 'tok-1' }))
  t.same(again, first, 'same answer')
  t.equal(dras.list().length, 1, 'created once')
  t.equal(dras.pendingRequests(), 1, 'queued once')
  const before = await dump(store)
  await refused(t, dras.create(input('/ns2', 's3://mybucket/p/', { ClientRequestToken: 'tok-1' })), 'IncompatibleParameterError', /ClientRequestToken tok-1 was used with a different FileSystemPath/, { Parameter: 'FileSystemPath' })
  await refused(t, dras.create(input('/ns1', 's3://mybucket/p/', { ClientRequestToken: 'tok-1', ImportedFileChunkSize: 5 })), 'IncompatibleParameterError', /different ImportedFileChunkSize/, { Parameter: 'ImportedFileChunkSize' })
  t.equal(await dump(store), before)
  // Key order inside an object does not make parameters different.
  await dras.create(input('/ns3', 's3://mybucket/q/', { ClientRequestToken: 'tok-2', S3: { AutoImportPolicy: { Events: ['NEW'] }, AutoExportPolicy: { Events: ['NEW'] } } }))
  t.equal(dras.list().length, 2)
  await dras.create({ S3: { AutoExportPolicy: { Events: ['NEW'] }, AutoImportPolicy: { Events: ['NEW'] } }, ClientRequestToken: 'tok-2', DataRepositoryPath: 's3://mybucket/q/', FileSystemPath: '/ns3', FileSystemId: FS.id })
  t.equal(dras.list().length, 2, 'the same request')

  const id = (first.Association as { AssociationId: string }).AssociationId
  const up = await dras.update({ AssociationId: id, ImportedFileChunkSize: 10, ClientRequestToken: 'tok-1' })
  t.match(up, { Association: { ImportedFileChunkSize: 10 } }, 'a token is per operation')
  t.same(await dras.update({ AssociationId: id, ImportedFileChunkSize: 10, ClientRequestToken: 'tok-1' }), up)
  await refused(t, dras.update({ AssociationId: id, ImportedFileChunkSize: 11, ClientRequestToken: 'tok-1' }), 'IncompatibleParameterError', /ImportedFileChunkSize/)
  const del = await dras.delete({ AssociationId: id, ClientRequestToken: 'tok-1' })
  const queued = dras.pendingRequests()
  t.same(await dras.delete({ AssociationId: id, ClientRequestToken: 'tok-1' }), del)
  t.equal(dras.pendingRequests(), queued, 'the delete queued once')
  await refused(t, dras.delete({ AssociationId: id, ClientRequestToken: 'tok-1', DeleteDataInFileSystem: true }), 'IncompatibleParameterError', /DeleteDataInFileSystem/)
})

t.test('update changes policies and chunk size only; lifecycle', async (t) => {
  const { dras } = await open(t)
  const created = await dras.create(input('/ns1', 's3://mybucket/p/', { S3: { AutoImportPolicy: { Events: ['NEW'] }, AutoExportPolicy: { Events: ['NEW', 'CHANGED'] } } }))
  const id = (created.Association as { AssociationId: string }).AssociationId
  // An update accepted while CREATING keeps CREATING, and UPDATING follows once the create is done.
  const early = await dras.update({ AssociationId: id, ImportedFileChunkSize: 4096 })
  t.match(early.Association, { Lifecycle: 'CREATING', ImportedFileChunkSize: 4096 })
  await dras.complete(dras.nextRequest()!, { lifecycle: 'AVAILABLE' })
  t.equal(dras.get(id)?.Lifecycle, 'UPDATING', 'the queued update applies next')
  await settleAll(dras)
  t.equal(dras.get(id)?.Lifecycle, 'AVAILABLE')

  const up = await dras.update({ AssociationId: id, S3: { AutoImportPolicy: { Events: ['NEW', 'CHANGED', 'DELETED'] } } })
  t.match(up.Association, { Lifecycle: 'UPDATING', FileSystemPath: '/ns1', DataRepositoryPath: 's3://mybucket/p/', ImportedFileChunkSize: 4096 })
  t.same((up.Association as { S3: object }).S3, { AutoImportPolicy: { Events: ['NEW', 'CHANGED', 'DELETED'] }, AutoExportPolicy: { Events: ['NEW', 'CHANGED'] } },
    'the policy given replaces that direction only')
  await settleAll(dras)
  const off = await dras.update({ AssociationId: id, S3: { AutoExportPolicy: { Events: [] } } })
  t.same((off.Association as { S3: { AutoExportPolicy: object } }).S3.AutoExportPolicy, { Events: [] }, 'an empty list turns a direction off')
  await settleAll(dras)

  await refused(t, dras.update({ AssociationId: 'dra-0000000000000ffff' }), 'DataRepositoryAssociationNotFound', /dra-0000000000000ffff does not exist/)
  await refused(t, dras.delete({ AssociationId: 'dra-0000000000000ffff' }), 'DataRepositoryAssociationNotFound', /does not exist/)

  // MISCONFIGURED → an update naming only the id → UPDATING → the check settles it.
  await dras.settle(id, 'MISCONFIGURED', 'cannot use the S3 bucket')
  t.match(dras.get(id), { Lifecycle: 'MISCONFIGURED', FailureDetails: { Message: 'cannot use the S3 bucket' } })
  t.match((await dras.update({ AssociationId: id })).Association, { Lifecycle: 'UPDATING' })
  await dras.complete(dras.nextRequest()!, { lifecycle: 'AVAILABLE' })
  t.match(dras.get(id), { Lifecycle: 'AVAILABLE' })
  t.equal(dras.get(id)?.FailureDetails, undefined, 'failure details cleared')

  await dras.settle(id, 'FAILED', 'gone')
  t.match(dras.get(id), { Lifecycle: 'FAILED', FailureDetails: { Message: 'gone' } })
  await dras.settle(id, 'AVAILABLE')
  t.equal(dras.get(id)?.Lifecycle, 'FAILED', 'FAILED is final: a health check does not bring it back')
  await refused(t, dras.update({ AssociationId: id }), 'BadRequest', /has FAILED \(gone\): delete it and create it again/)
  await dras.delete({ AssociationId: id })
  await refused(t, dras.update({ AssociationId: id }), 'BadRequest', /is being deleted/)
})

t.test('delete: DELETING at once, gone when worked; a second delete queues nothing', async (t) => {
  const { dras } = await open(t)
  const id = ((await dras.create(input('/ns1', 's3://mybucket/p/'))).Association as { AssociationId: string }).AssociationId
  // Deleted while CREATING: the create settles as DELETING, then the delete removes it.
  t.same(await dras.delete({ AssociationId: id, DeleteDataInFileSystem: true }), { AssociationId: id, Lifecycle: 'DELETING', DeleteDataInFileSystem: true })
  t.same(await dras.delete({ AssociationId: id }), { AssociationId: id, Lifecycle: 'DELETING', DeleteDataInFileSystem: false })
  t.equal(dras.pendingRequests(), 2)
  t.match(dras.nextRequest(), { op: 'create' })
  await dras.complete(dras.nextRequest()!, { lifecycle: 'AVAILABLE' })
  t.equal(dras.get(id)?.Lifecycle, 'DELETING', 'a create finishing after a delete was accepted stays DELETING')
  t.match(dras.nextRequest(), { op: 'delete', DeleteDataInFileSystem: true })
  await dras.settle(id, 'AVAILABLE')
  t.equal(dras.get(id)?.Lifecycle, 'DELETING', 'a health check does not touch a DELETING association')
  await dras.complete(dras.nextRequest()!, 'removed')
  t.equal(dras.get(id), undefined)
  t.same(dras.list(), [])
  await refused(t, dras.delete({ AssociationId: id }), 'DataRepositoryAssociationNotFound', /does not exist/)
})

t.test('the table and the queue survive a reopen', async (t) => {
  const root = await fs.promises.mkdtemp(path.join(os.tmpdir(), 's3link-dra-'))
  t.teardown(() => fs.promises.rm(root, { recursive: true, force: true }))
  let ids: string[]
  {
    const { dras, store } = await open(t, root)
    ids = []
    for (let i = 1; i <= 3; i++) ids.push(((await dras.create(input(`/ns${i}`, `s3://mybucket/p${i}/`))).Association as { AssociationId: string }).AssociationId)
    await dras.complete(dras.nextRequest()!, { lifecycle: 'AVAILABLE' })
    await dras.delete({ AssociationId: ids[0], DeleteDataInFileSystem: true })
    await store.close()
  }
  const { dras } = await open(t, root)
  t.same(dras.list().map((r) => [r.AssociationId, r.Lifecycle]), [[ids[0], 'DELETING'], [ids[1], 'CREATING'], [ids[2], 'CREATING']])
  t.equal(dras.pendingRequests(), 3)
  t.match(dras.nextRequest(), { op: 'create', AssociationId: ids[1], seq: 2 })
  await dras.update({ AssociationId: ids[1], ImportedFileChunkSize: 9 })
  const order: Array<[number, string]> = []
  for (let q = dras.nextRequest(); q !== undefined; q = dras.nextRequest()) {
    order.push([q.seq, q.op])
    await dras.complete(q, q.op === 'delete' ? 'removed' : { lifecycle: 'AVAILABLE' })
  }
  t.same(order, [[2, 'create'], [3, 'create'], [4, 'delete'], [5, 'update']], 'in the order accepted; numbering continues')
  t.same(dras.list().map((r) => r.AssociationId), [ids[1], ids[2]])
})

t.test('FailureDetails.Message is bounded to 256 characters', async (t) => {
  const { dras } = await open(t)
  await dras.create(input('/ns1', 's3://mybucket/p/'))
  const q = dras.nextRequest()!
  await dras.complete(q, { lifecycle: 'MISCONFIGURED', failure: 'x'.repeat(1000) })
  t.equal(dras.get(q.AssociationId)?.FailureDetails?.Message.length, 256)
})
