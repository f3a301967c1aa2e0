/**
 * The DRA lifecycle against a real daemon, a real mount and the embedded S3 (spec/fsx-dra.md §10):
 *
 *  - the request queue is durable: a daemon killed (-9) while a create is CREATING, or while a
 *    delete (with DeleteDataInFileSystem) is DELETING, finishes it after the restart. A TCP proxy
 *    in front of S3 holds the bucket check, so the request is really in progress when it dies.
 *  - MISCONFIGURED when the bucket refuses the credentials, with a message; the periodic check
 *    (draCheckIntervalMs: 500) brings it back once fixed, and notices a new cause by itself.
 *  - FAILED when the linked directory is removed through the mount, or the bucket is deleted.
 *
 * Runs the compiled daemon: build first (`npx tsc -p tsconfig.json`; `make test` does).
 */
import t from 'tap'
import { S3Client, DeleteBucketCommand } from '@aws-sdk/client-s3'
import { startFs, startS3, isolatedAwsEnv, type TestFs } from '../fixtures/harness'
import { startProxy } from '../fixtures/proxy'
import { describeAll, fsx, waitForDra } from '../fixtures/aws'

const POLICIES = { AutoImportPolicy: { Events: ['NEW', 'CHANGED', 'DELETED'] }, AutoExportPolicy: { Events: ['NEW', 'CHANGED', 'DELETED'] } }

t.test('DRA lifecycle', async (t) => {
  const s3 = await startS3(t, ['held', 'wrongkeys', 'doomed'])
  const proxy = await startProxy(t, s3.port)
  const tfs = await startFs(t, { env: isolatedAwsEnv(), config: { draCheckIntervalMs: 500 } })
  const fsId = JSON.parse((await tfs.cli(['status', tfs.name, '--json'])).stdout).id as string
  // s3rver does not check SigV4 signatures, only that the access key id is one it knows.
  const addBucket = async (name: string, endpoint: string, keyId = 'S3RVER'): Promise<void> => {
    const r = await tfs.cli(['bucket', 'add', name, '--cloud', 'other', '--endpoint', endpoint, '--access-key-id', keyId, '--secret-access-key', 'S3RVER'])
    if (r.code !== 0) throw new Error(r.stderr)
  }
  await addBucket('held', proxy.endpoint)
  await addBucket('wrongkeys', s3.endpoint, 'NOT-A-KEY')
  await addBucket('doomed', s3.endpoint)

  async function create (fsPath: string, repo: string): Promise<any> {
    const r = await fsx(tfs, 'CreateDataRepositoryAssociation', { FileSystemId: fsId, FileSystemPath: fsPath, DataRepositoryPath: repo, S3: POLICIES })
    if (r.status !== 200) throw new Error(JSON.stringify(r.body))
    return r.body.Association
  }
  const exists = async (p: string): Promise<boolean> => (await tfs.sh(`test -e '${p}'`)).code === 0
  /**
   * Waits until the proxy holds traffic on a connection opened after `since` connections: a bucket
   * check of the worker (of the daemon running now) is under way and hanging.
   */
  async function checkHeld (since: number): Promise<void> {
    const end = Date.now() + 5000
    while (proxy.held === 0 || proxy.accepted <= since) {
      if (Date.now() > end) throw new Error('no bucket check reached the proxy')
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  /** kill -9 and start again on the same state (the mount left dead is cleaned up at start). */
  async function crash (tfs: TestFs): Promise<void> {
    await tfs.kill9()
    await tfs.mount()
  }

  // The bucket check gives up after 15 s (src/repo/bucket-probe.ts): each hold below lasts a few.
  t.test('a daemon killed during CREATING finishes the create after the restart', async (t) => {
    proxy.pause()
    const a = await create('/ns1/data', 's3://held/a')
    t.equal(a.Lifecycle, 'CREATING', 'answered at once')
    await checkHeld(0)
    t.equal((await waitForDra(tfs, a.AssociationId, 'CREATING')).Lifecycle, 'CREATING', 'still CREATING while the bucket check hangs')
    const accepted = proxy.accepted
    await crash(tfs)
    t.match(await describeAll(tfs), [{ AssociationId: a.AssociationId, Lifecycle: 'CREATING' }], 'still CREATING after the restart')
    await checkHeld(accepted)
    t.pass('the restarted daemon works the create again')
    proxy.resume()
    const done = await waitForDra(tfs, a.AssociationId, 'AVAILABLE')
    t.notOk('FailureDetails' in done)
    t.equal(done.DataRepositoryPath, 's3://held/a/')
    t.ok(await exists('ns1/data'), 'the directory exists')
    t.match(tfs.readLog(), /data repository association created/)
  })

  t.test('a daemon killed during DELETING finishes the delete (and removes the data) after the restart', async (t) => {
    const a = (await describeAll(tfs))[0]
    t.equal((await tfs.sh('mkdir -p ns1/data/sub && echo one > ns1/data/f && echo two > ns1/data/sub/g')).code, 0)
    // The delete waits in the queue behind a create whose bucket check hangs.
    proxy.pause()
    const b = await create('/ns2', 's3://held/b/')
    const del = await fsx(tfs, 'DeleteDataRepositoryAssociation', { AssociationId: a.AssociationId, DeleteDataInFileSystem: true })
    t.same(del.body, { AssociationId: a.AssociationId, Lifecycle: 'DELETING', DeleteDataInFileSystem: true })
    const accepted = proxy.accepted
    await crash(tfs)
    t.match(await describeAll(tfs), [{ AssociationId: a.AssociationId, Lifecycle: 'DELETING' }, { AssociationId: b.AssociationId, Lifecycle: 'CREATING' }])
    t.equal((await tfs.sh('cat ns1/data/f')).stdout, 'one\n', 'the data is still there while the delete waits')
    await checkHeld(accepted)
    proxy.resume()
    await waitForDra(tfs, a.AssociationId, undefined)
    t.equal((await waitForDra(tfs, b.AssociationId, 'AVAILABLE')).Lifecycle, 'AVAILABLE')
    t.notOk(await exists('ns1/data'), 'the linked directory and its files are gone')
    t.ok(await exists('ns1'), 'its parent, outside the association, stays')
    const gone = await fsx(tfs, 'DescribeDataRepositoryAssociations', { AssociationIds: [a.AssociationId] })
    t.equal(gone.status, 400)
    t.equal(gone.body.__type, 'DataRepositoryAssociationNotFound')
  })

  t.test('MISCONFIGURED while the bucket refuses the credentials; the periodic check recovers it', async (t) => {
    const c = await create('/ns3', 's3://wrongkeys/')
    const bad = await waitForDra(tfs, c.AssociationId, 'MISCONFIGURED')
    t.match(bad.FailureDetails, { Message: /^cannot use the S3 bucket wrongkeys: access denied/ })
    t.ok(await exists('ns3'), 'the directory was made anyway')
    t.equal((await tfs.cli(['bucket', 'modify', 'wrongkeys', '--access-key-id', 'S3RVER'])).code, 0)
    const good = await waitForDra(tfs, c.AssociationId, 'AVAILABLE', 5000)
    t.notOk('FailureDetails' in good, 'no update needed, and the failure is cleared')
    // A cause that appears later is noticed too.
    t.equal((await tfs.cli(['bucket', 'modify', 'wrongkeys', '--access-key-id', 'WRONG-AGAIN'])).code, 0)
    t.match((await waitForDra(tfs, c.AssociationId, 'MISCONFIGURED', 5000)).FailureDetails, { Message: /access denied/ })
    t.equal((await tfs.cli(['bucket', 'modify', 'wrongkeys', '--access-key-id', 'S3RVER'])).code, 0)
    await waitForDra(tfs, c.AssociationId, 'AVAILABLE', 5000)
  })

  t.test('MISCONFIGURED while the endpoint does not answer', async (t) => {
    await addBucket('nowhere', 'http://127.0.0.1:9')
    const n = await create('/ns5', 's3://nowhere/')
    t.match((await waitForDra(tfs, n.AssociationId, 'MISCONFIGURED')).FailureDetails, { Message: /^cannot use the S3 bucket nowhere: cannot reach the endpoint \(ECONNREFUSED\)$/ })
    await fsx(tfs, 'DeleteDataRepositoryAssociation', { AssociationId: n.AssociationId, DeleteDataInFileSystem: true })
    await waitForDra(tfs, n.AssociationId, undefined)
    t.notOk(await exists('ns5'))
  })

  t.test('FAILED when the linked directory is removed through the mount', async (t) => {
    const c = (await describeAll(tfs)).find((a) => a.FileSystemPath === '/ns3')
    t.equal((await tfs.sh('rmdir ns3')).code, 0)
    const failed = await waitForDra(tfs, c.AssociationId, 'FAILED', 5000)
    t.same(failed.FailureDetails, { Message: 'the file system path /ns3 no longer exists' })
    t.equal((await tfs.sh('mkdir ns3')).code, 0)
    await new Promise((resolve) => setTimeout(resolve, 1200))
    t.equal((await describeAll(tfs)).find((a) => a.AssociationId === c.AssociationId).Lifecycle, 'FAILED', 'FAILED is final')
    const up = await fsx(tfs, 'UpdateDataRepositoryAssociation', { AssociationId: c.AssociationId })
    t.equal(up.body.__type, 'BadRequest')
    t.match(up.body.Message, /has FAILED .*delete it and create it again/)
    t.equal((await fsx(tfs, 'DeleteDataRepositoryAssociation', { AssociationId: c.AssociationId })).status, 200, 'a FAILED association can be deleted')
    await waitForDra(tfs, c.AssociationId, undefined)
  })

  t.test('FAILED when the bucket is deleted', async (t) => {
    const d = await create('/ns4', 's3://doomed/p/')
    await waitForDra(tfs, d.AssociationId, 'AVAILABLE')
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true' // this test's own client only
    const client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } })
    t.teardown(() => client.destroy())
    await client.send(new DeleteBucketCommand({ Bucket: 'doomed' }))
    const failed = await waitForDra(tfs, d.AssociationId, 'FAILED', 5000)
    t.match(failed.FailureDetails, { Message: /^the S3 bucket doomed does not exist/ })
  })
})
