// Data repository tasks that are stopped midway: cancel of an EXECUTING task (CANCELING, then
// CANCELED after the page in flight, fewer objects imported than there are) and of a PENDING one
// (CANCELED at once, never started); and kill -9 of the daemon during EXECUTING (the task runs
// again from the start at the next mount and finishes, the queued one after it).
import t from 'tap'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { startFs, startS3, type TestFs } from '../fixtures/harness'
import { aws, fsx, waitForDra } from '../fixtures/aws'
import { startProxy } from '../fixtures/proxy'
import { s3Client } from '../fixtures/s3'

const BUCKET = 'cancel'
// One full listing page of directory markers: a batch import HEADs each (files come in from the
// listing alone, in a blink), so a page takes seconds on s3rver and a task is caught in it.
const OBJECTS = 1000

async function task (tfs: TestFs, id: string): Promise<any> {
  const r = await fsx(tfs, 'DescribeDataRepositoryTasks', { TaskIds: [id] })
  if (r.status !== 200) throw new Error(JSON.stringify(r.body))
  return r.body.DataRepositoryTasks[0]
}

async function waitFor (tfs: TestFs, id: string, what: string, ok: (task: any) => boolean, ms = 30_000): Promise<any> {
  for (const end = Date.now() + ms; ; await new Promise((resolve) => setTimeout(resolve, 50))) {
    const last = await task(tfs, id)
    if (ok(last)) return last
    if (Date.now() > end) throw new Error(`${id} did not become ${what}: ${JSON.stringify(last)}`)
  }
}
const ended = (x: any): boolean => ['SUCCEEDED', 'FAILED', 'CANCELED'].includes(x.Lifecycle)
// Listed and saved (the first save is after a second): the page's HEADs are under way.
const importing = (x: any): boolean => x.Lifecycle === 'EXECUTING' && x.Status?.TotalCount > 0

t.test('cancel and restart', async (t) => {
  const s3 = await startS3(t, [BUCKET])
  const c = s3Client(t, s3.endpoint)
  // The daemons reach S3 through a proxy that can hold every request: a task is caught mid-page.
  const proxy = await startProxy(t, s3.port)
  t.teardown(() => proxy.close())
  let next = 0
  await Promise.all(Array.from({ length: 32 }, async () => {
    for (let i = next++; i < OBJECTS; i = next++) await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: `c/f${String(i).padStart(5, '0')}/`, Body: '', ContentLength: 0 }))
  }))

  async function linkedFs (): Promise<{ tfs: TestFs, id: string }> {
    const tfs = await startFs(t, { config: { draCheckIntervalMs: 500 } })
    const add = await tfs.addBucket(BUCKET, proxy.endpoint)
    t.equal(add.code, 0, add.stderr)
    const id = JSON.parse((await tfs.cli(['status', tfs.name, '--json'])).stdout).id as string
    const r = await aws(tfs, ['fsx', 'create-data-repository-association', '--file-system-id', id, '--file-system-path', '/big', '--data-repository-path', `s3://${BUCKET}/c/`])
    t.equal(r.code, 0, r.stderr)
    await waitForDra(tfs, r.json.Association.AssociationId, 'AVAILABLE')
    return { tfs, id }
  }
  const createTask = async (tfs: TestFs, id: string, paths: string[] = []): Promise<string> => {
    const r = await fsx(tfs, 'CreateDataRepositoryTask', { Type: 'IMPORT_METADATA_FROM_REPOSITORY', FileSystemId: id, Report: { Enabled: false }, ...(paths.length > 0 ? { Paths: paths } : {}) })
    if (r.status !== 200) throw new Error(JSON.stringify(r.body))
    return r.body.DataRepositoryTask.TaskId
  }
  const fileCount = async (tfs: TestFs): Promise<number> => Number((await tfs.sh('ls big | wc -l')).stdout.trim())

  await t.test('cancel: an EXECUTING task stops after the objects in flight, a PENDING one at once', async (t) => {
    const { tfs, id } = await linkedFs()
    const running = await createTask(tfs, id)
    const queued = await createTask(tfs, id)
    await waitFor(tfs, running, 'importing', importing)
    proxy.pause()
    t.teardown(() => proxy.resume())
    t.equal((await task(tfs, queued)).Lifecycle, 'PENDING', 'one task executes at a time; the next waits')
    const pending = await aws(tfs, ['fsx', 'cancel-data-repository-task', '--task-id', queued])
    t.same(pending.json, { Lifecycle: 'CANCELED', TaskId: queued }, 'a PENDING task is CANCELED at once')

    const cancel = await tfs.cli(['task', 'cancel', running])
    t.equal(cancel.code, 0, cancel.stderr)
    t.equal(cancel.stdout, `${running}: CANCELING\n`, 'an EXECUTING task is CANCELING first')

    // The requests held by the proxy are aborted by the cancel: nothing needs S3 to end the task.
    const done = await waitFor(tfs, running, 'ended', ended)
    proxy.resume()
    t.equal(done.Lifecycle, 'CANCELED')
    t.notOk('FailureDetails' in done)
    t.equal(done.Status.FailedCount, 0, 'objects cut short by the cancel are not failures')
    t.ok(done.Status.SucceededCount < OBJECTS, `fewer imported (${done.Status.SucceededCount as number}) than there are objects (${OBJECTS})`)
    t.ok(done.Status.SucceededCount < done.Status.TotalCount, 'fewer than listed: the page in flight was cut short')
    t.equal(await fileCount(tfs), done.Status.SucceededCount, 'what was imported is there; the rest is not')
    const never = await task(tfs, queued)
    t.equal(never.Lifecycle, 'CANCELED')
    t.notOk('StartTime' in never, 'the canceled PENDING task never started')
    const again = await aws(tfs, ['fsx', 'cancel-data-repository-task', '--task-id', running])
    t.match(again.stderr, /DataRepositoryTaskEnded/)
  })

  await t.test('kill -9 during EXECUTING: the task runs again from the start and finishes, the queued one after it', async (t) => {
    const { tfs, id } = await linkedFs()
    const first = await createTask(tfs, id)
    const second = await createTask(tfs, id, [`s3://${BUCKET}/c/f0000`])
    await waitFor(tfs, first, 'importing', importing)
    proxy.pause()
    await tfs.kill9()
    proxy.resume()
    await tfs.mount()
    const done = await waitFor(tfs, first, 'ended', ended)
    t.match(done, { Lifecycle: 'SUCCEEDED', Status: { TotalCount: OBJECTS, SucceededCount: OBJECTS, FailedCount: 0 } }, 'counted anew from the start')
    const after = await waitFor(tfs, second, 'ended', ended)
    t.match(after, { Lifecycle: 'SUCCEEDED', Status: { TotalCount: 10, SucceededCount: 10 } }, 'the queued task stayed queued and ran next')
    t.ok(after.StartTime >= done.EndTime, 'after the first one')
    t.equal(await fileCount(tfs), OBJECTS)
    t.match(tfs.readLog(), /running it again from the start/)
  })
})
