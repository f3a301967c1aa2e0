// EXPORT_TO_REPOSITORY tasks (issue 6) on a real mount against the embedded S3 server: what changed
// since the last export reaches S3 with FSx metadata, counters and HSM states follow, a write makes
// a file dirty and the next task exports it again; the refusal while automatic export is on (AWS
// CLI); the failures.csv report (a key over 1,024 bytes, a file open for writing); cancel.
import t from 'tap'
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import { CLI, startFs, startS3, type TestFs } from '../fixtures/harness'
import { aws, fsx } from '../fixtures/aws'
import { startProxy } from '../fixtures/proxy'
import { s3Client } from '../fixtures/s3'

const BUCKET = 'exptask'
const NEVER = '(0x00000000)'
const CLEAN = '(0x00000009) exists archived, archive_id:1'
const DIRTY = '(0x0000000b) exists dirty archived, archive_id:1'
const REPORT = { Enabled: true, Path: `s3://${BUCKET}/p/reports`, Format: 'REPORT_CSV_20191124', Scope: 'FAILED_FILES_ONLY' }

async function setup (t: Tap.Test, viaProxy = false) {
  const s3 = await startS3(t, [BUCKET])
  const proxy = viaProxy ? await startProxy(t, s3.port) : undefined
  const c = s3Client(t, s3.endpoint)
  const tfs = await startFs(t, { config: { importIntervalMs: 3_600_000 } })
  const add = await tfs.addBucket(BUCKET, proxy?.endpoint ?? s3.endpoint)
  t.equal(add.code, 0, add.stderr)
  const dra = await tfs.cli(['dra', 'create', '/ns1', `s3://${BUCKET}/p/`, '--wait'])
  t.equal(dra.code, 0, dra.stderr)
  const id = JSON.parse((await tfs.cli(['status', tfs.name, '--json'])).stdout).id as string
  const keys = async (prefix = 'p/'): Promise<string[]> => ((await c.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }))).Contents ?? []).map((o) => o.Key ?? '').sort()
  const head = async (key: string): Promise<Record<string, string>> => (await c.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))).Metadata ?? {}
  const body = async (key: string): Promise<string> => await (await c.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body?.transformToString('utf8') ?? ''
  const state = async (p: string): Promise<string> => (await tfs.cli(['hsm', 'state', tfs.p(p)])).stdout.slice(tfs.p(p).length + 2).trim()
  const create = async (input: object): Promise<any> => {
    const r = await fsx(tfs, 'CreateDataRepositoryTask', { Type: 'EXPORT_TO_REPOSITORY', FileSystemId: id, Report: { Enabled: false }, ...input })
    if (r.status !== 200) throw new Error(JSON.stringify(r.body))
    return r.body.DataRepositoryTask
  }
  return { tfs, id, keys, head, body, state, create, proxy }
}

async function task (tfs: TestFs, id: string): Promise<any> {
  return (await fsx(tfs, 'DescribeDataRepositoryTasks', { TaskIds: [id] })).body.DataRepositoryTasks[0]
}

async function waitFor (tfs: TestFs, id: string, ok: (x: any) => boolean, ms = 20_000): Promise<any> {
  for (const end = Date.now() + ms; ; await new Promise((resolve) => setTimeout(resolve, 100))) {
    const last = await task(tfs, id)
    if (ok(last)) return last
    if (Date.now() > end) throw new Error(`${id}: ${JSON.stringify(last)}`)
  }
}
const ended = (x: any): boolean => ['SUCCEEDED', 'FAILED', 'CANCELED'].includes(x.Lifecycle)

t.test('an export task exports what changed: bytes, FSx metadata, counters, HSM states', async (t) => {
  const { tfs, id, keys, head, body, state } = await setup(t)
  t.equal((await tfs.sh('mkdir -p ns1/d/e && printf hello > ns1/d/e/a.txt && printf world > ns1/b.txt && ln -s d/e/a.txt ns1/link && chmod 640 ns1/b.txt && chown 1000:100 ns1/b.txt && echo out > outside.txt')).code, 0)
  t.equal(await state('ns1/b.txt'), NEVER, 'never exported')
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.same(await keys(), [], 'no automatic export on this DRA')

  const created = await aws(tfs, ['fsx', 'create-data-repository-task', '--type', 'EXPORT_TO_REPOSITORY', '--file-system-id', id, '--paths', 'ns1',
    '--report', `Enabled=true,Path=${REPORT.Path},Format=${REPORT.Format},Scope=${REPORT.Scope}`])
  t.equal(created.code, 0, created.stderr)
  t.match(created.json.DataRepositoryTask, { Type: 'EXPORT_TO_REPOSITORY', Lifecycle: 'PENDING', Paths: ['ns1'] })
  const first = created.json.DataRepositoryTask.TaskId as string
  const done = await waitFor(tfs, first, ended)
  t.match(done, { Lifecycle: 'SUCCEEDED', Status: { TotalCount: 5, SucceededCount: 5, FailedCount: 0 } }, 'd, d/e, d/e/a.txt, b.txt, link')
  t.same(await keys(), ['p/b.txt', 'p/d/', 'p/d/e/', 'p/d/e/a.txt', 'p/link', `p/reports/${first}/failures.csv`])
  t.equal(await body(`p/reports/${first}/failures.csv`), '', 'failures.csv: nothing failed')
  t.equal(await body('p/b.txt'), 'world')
  t.match(await head('p/b.txt'), { 'file-permissions': '0100640', 'file-owner': '1000', 'file-group': '100', 'file-mtime': /^\d+ns$/ })
  t.match(await head('p/d/'), { 'file-permissions': '0040755' }, 'directory marker')
  t.equal(await body('p/link'), 'd/e/a.txt', 'a symlink\'s object holds its target')
  t.match(await head('p/link'), { 'file-permissions': '0120777' })
  t.equal(await state('ns1/b.txt'), CLEAN)
  t.equal(await state('ns1/d/e/a.txt'), CLEAN)

  t.equal((await tfs.sh('echo more >> ns1/b.txt')).code, 0)
  t.equal(await state('ns1/b.txt'), DIRTY, 'a write makes it dirty')
  // Through the s3link CLI, from outside the mount: a relative PATH is FSx's form (relative to the mount).
  const again = await tfs.cli(['task', 'export', 'ns1', '--wait'])
  t.equal(again.code, 0, again.stderr)
  t.match(again.stderr, /created export task task-[0-9a-f]{17}[\s\S]*SUCCEEDED, 1\/1 files/, 'only the changed file')
  t.equal(await body('p/b.txt'), 'worldmore\n')
  t.equal(await state('ns1/b.txt'), CLEAN, 'clean again')

  // A path inside the mount (absolute), nothing left to do.
  const nothing = await tfs.cli(['task', 'export', tfs.p('ns1/d'), '--wait', '--json'])
  t.equal(nothing.code, 0, nothing.stderr)
  t.match(JSON.parse(nothing.stdout), { Lifecycle: 'SUCCEEDED', Paths: ['ns1/d'], Status: { TotalCount: 0 } })
  const list = await tfs.cli(['task', 'list'])
  t.match(list.stdout, new RegExp(`${first}\\s+export\\s+SUCCEEDED\\s+5/5 files`))

  // Renamed since its export: its new key is missing in S3 (an export task exports no deletions).
  t.equal((await tfs.sh('mv ns1/d ns1/moved')).code, 0)
  const moved = await tfs.cli(['task', 'export', 'ns1', '--wait'])
  t.equal(moved.code, 0, moved.stderr)
  t.match(moved.stderr, /SUCCEEDED, 3\/3 files/, 'moved, moved/e, moved/e/a.txt')
  t.equal(await body('p/moved/e/a.txt'), 'hello')
  t.ok((await keys()).includes('p/d/e/a.txt'), 'the old key stays')

  // chmod and chown since the last export: the objects get the new metadata, nothing else is sent.
  t.equal((await tfs.sh('chmod 600 ns1/b.txt && chown 7:8 ns1/moved/e')).code, 0)
  const perms = await tfs.cli(['task', 'export', 'ns1', '--wait'])
  t.equal(perms.code, 0, perms.stderr)
  t.match(perms.stderr, /SUCCEEDED, 2\/2 files/, 'b.txt and moved/e')
  t.match(await head('p/b.txt'), { 'file-permissions': '0100600', 'file-owner': '1000' })
  t.match(await head('p/moved/e/'), { 'file-owner': '7', 'file-group': '8' })
  t.equal(await body('p/b.txt'), 'worldmore\n', 'the same bytes')
  t.match((await tfs.cli(['task', 'export', 'ns1', '--wait'])).stderr, /SUCCEEDED, 0\/0 files/, 'nothing left')
})

t.test('refused while automatic export is on; bad paths', async (t) => {
  const { tfs, id, create } = await setup(t)
  const auto = await tfs.cli(['dra', 'create', '/auto', `s3://${BUCKET}/auto/`, '--export', 'NEW,CHANGED,DELETED', '--wait'])
  t.equal(auto.code, 0, auto.stderr)
  const cases: Array<[string, string[], RegExp]> = [
    ['auto-export DRA', ['--paths', 'auto'], /BadRequest.*automatic export and export data repository tasks cannot run at the same time: association dra-[0-9a-f]{17} \(\/auto\)/],
    ['no paths: every DRA, one of them exports automatically', [], /BadRequest.*cannot run at the same time.*\/auto/],
    ['outside every DRA', ['--paths', 'elsewhere/x'], /BadRequest.*elsewhere\/x lies outside every data repository association/],
    ['a .. component', ['--paths', 'ns1/../auto'], /BadRequest.*\.\. components/]
  ]
  for (const [what, args, error] of cases) {
    const r = await aws(tfs, ['fsx', 'create-data-repository-task', '--type', 'EXPORT_TO_REPOSITORY', '--file-system-id', id, ...args, '--report', 'Enabled=false'])
    t.not(r.code, 0, what)
    t.match(r.stderr, error, what)
  }
  t.same((await fsx(tfs, 'DescribeDataRepositoryTasks', {})).body.DataRepositoryTasks, [], 'no task was created')
  const cli = await tfs.cli(['task', 'export', tfs.p('auto')])
  t.equal(cli.code, 1)
  t.match(cli.stderr, /cannot run at the same time/)
  // FSx's own form with a leading / and the mount's ns1 work.
  const ok = await create({ Paths: ['/ns1/'] })
  t.match(await waitFor(tfs, ok.TaskId, ended), { Lifecycle: 'SUCCEEDED' })
  const dras = (await fsx(tfs, 'DescribeDataRepositoryAssociations', {})).body.Associations as any[]
  const ns1 = dras.find((d) => d.FileSystemPath === '/ns1').AssociationId
  const byDra = await fsx(tfs, 'DescribeDataRepositoryTasks', { Filters: [{ Name: 'data-repository-association-id', Values: [ns1] }] })
  t.same(byDra.body.DataRepositoryTasks.map((x: any) => x.TaskId), [ok.TaskId], 'the association filter reads export Paths as file-system paths')
})

t.test('failures.csv lists what could not be exported; a failed file stays unexported', async (t) => {
  const { tfs, keys, body, state } = await setup(t)
  const n = (c: string): string => c.repeat(250)
  const deep = `ns1/deep/${n('a')}/${n('b')}/${n('c')}/${n('d')}`
  const long = `${deep}/${'f'.repeat(20)}.txt` // p/ + deep/ + 4 × 251 + 24 bytes: 1,035 > 1,024
  t.equal((await tfs.sh(`mkdir -p ${deep} && echo ok > ${deep}/ok && echo x > ${long} && echo y > 'ns1/busy,1'`)).code, 0)
  // ns1/busy,1 is open for writing while the task runs: ResourceBusy (and a name CSV quotes).
  const cmd = `exec 3>>'ns1/busy,1'; echo more >&3; ${process.execPath} ${CLI} task export ns1 --report s3://${BUCKET}/p/r/ --wait --json --config ${tfs.configPath}; s=$?; exec 3>&-; exit $s`
  const r = await tfs.sh(cmd)
  t.equal(r.code, 1, 'a task with failed files exits 1')
  const failed = JSON.parse(r.stdout)
  t.match(failed, { Lifecycle: 'FAILED', Status: { TotalCount: 8, SucceededCount: 6, FailedCount: 2 }, FailureDetails: { Message: '2 of 8 files could not be exported: the completion report lists them' } })
  t.match(r.stderr, new RegExp(`task ${failed.TaskId as string} FAILED: 2 of 8 files could not be exported`))
  const report = (await body(`p/r/${failed.TaskId as string}/failures.csv`)).split('\n').sort()
  t.same(report, ['', '"ns1/busy,1",failed,ResourceBusy', `${long},failed,PathSizeTooLong`].sort(), 'failures.csv: FilePath relative to the root, FSx codes')
  t.equal(await state(long), NEVER, 'the file that failed is still unexported')
  t.equal(await state(`${deep}/ok`), CLEAN)
  t.ok((await keys()).includes(`p/deep/${n('a')}/${n('b')}/${n('c')}/${n('d')}/ok`))
})

t.test('cancel: files in flight finish, the rest stays unexported', async (t) => {
  const { tfs, keys, state, create, proxy } = await setup(t, true)
  t.equal((await tfs.sh('mkdir ns1/many && for i in $(seq 1 100); do echo "$i" > ns1/many/f$i; done')).code, 0)
  proxy!.pause()
  t.teardown(() => proxy!.resume())
  const running = await create({ Paths: ['ns1/many'] })
  // The walk waits for free upload slots: 8 uploads (the directory marker among them) hang.
  await waitFor(tfs, running.TaskId, (x) => x.Lifecycle === 'EXECUTING' && x.Status?.TotalCount >= 8)
  const cancel = await tfs.cli(['task', 'cancel', running.TaskId])
  t.equal(cancel.stdout, `${running.TaskId as string}: CANCELING\n`)
  proxy!.resume()
  const done = await waitFor(tfs, running.TaskId, ended)
  t.equal(done.Lifecycle, 'CANCELED')
  t.equal(done.Status.TotalCount, 8, 'nothing new started after the cancel')
  t.equal(done.Status.SucceededCount + done.Status.FailedCount, 8, 'the files in flight finished')
  const exported = (await keys('p/many/')).length
  t.equal(exported, done.Status.SucceededCount)
  t.equal(await state('ns1/many/f99'), NEVER, 'a file the task did not reach')
})
