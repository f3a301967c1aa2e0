// Data repository tasks (issue 5) through the real AWS CLI and the s3link CLI, on a real mount
// against the embedded S3 server: an import task's counters, the imported entries' metadata and
// lazily loaded content, the completion report read back from S3, BatchImportMetaDataOnCreate,
// and the FSx errors of bad requests.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { PutObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3'
import { CLI, run, startFs, startS3, type TestFs } from '../fixtures/harness'
import { aws, fsx, waitForDra } from '../fixtures/aws'
import { s3Client } from '../fixtures/s3'

const BUCKET = 'tasks'
const META = { 'file-permissions': '0100640', 'file-owner': '1000', 'file-group': '1000', 'file-mtime': '1595002920000000000ns' }
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex')

async function setup (t: Tap.Test) {
  const s3 = await startS3(t, [BUCKET])
  const c = s3Client(t, s3.endpoint)
  const tfs = await startFs(t, { config: { draCheckIntervalMs: 500 } })
  const add = await tfs.addBucket(BUCKET, s3.endpoint)
  t.equal(add.code, 0, add.stderr)
  const id = JSON.parse((await tfs.cli(['status', tfs.name, '--json'])).stdout).id as string
  const put = async (key: string, body: Buffer | string, metadata?: Record<string, string>): Promise<void> => {
    await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, Metadata: metadata }))
  }
  const get = async (key: string): Promise<string> => await (await c.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body?.transformToString('utf8') ?? ''
  const link = async (fsPath: string, repo: string, batch = false): Promise<string> => {
    const args = ['fsx', 'create-data-repository-association', '--file-system-id', id, '--file-system-path', fsPath, '--data-repository-path', repo]
    if (batch) args.push('--batch-import-meta-data-on-create')
    const r = await aws(tfs, args)
    t.equal(r.code, 0, r.stderr)
    const draId = r.json.Association.AssociationId as string
    await waitForDra(tfs, draId, 'AVAILABLE')
    return draId
  }
  return { tfs, id, put, get, link }
}

async function task (tfs: TestFs, id: string): Promise<any> {
  const r = await fsx(tfs, 'DescribeDataRepositoryTasks', { TaskIds: [id] })
  if (r.status !== 200) throw new Error(JSON.stringify(r.body))
  return r.body.DataRepositoryTasks[0]
}

async function waitEnded (tfs: TestFs, id: string, ms = 20_000): Promise<any> {
  for (const end = Date.now() + ms; ; await new Promise((resolve) => setTimeout(resolve, 100))) {
    const last = await task(tfs, id)
    if (['SUCCEEDED', 'FAILED', 'CANCELED'].includes(last.Lifecycle)) return last
    if (Date.now() > end) throw new Error(`${id} did not end: ${JSON.stringify(last)}`)
  }
}

t.test('an import task: counters, FSx metadata, lazy content, and the completion report in S3', async (t) => {
  const { tfs, id, put, get, link } = await setup(t)
  const noDra = await aws(tfs, ['fsx', 'create-data-repository-task', '--type', 'IMPORT_METADATA_FROM_REPOSITORY', '--file-system-id', id, '--report', 'Enabled=false'])
  t.not(noDra.code, 0)
  t.match(noDra.stderr, /BadRequest.*no data repository association/, 'a file system without DRAs cannot run tasks')

  await link('/ns1', `s3://${BUCKET}/p/`)
  const big = randomBytes(300_000)
  await put('p/good/a.txt', 'with metadata\n', META)
  await put('p/good/dir/b.bin', big)
  await put('p/good/plain.txt', 'no metadata\n')
  await put('p/a,b//c.txt', 'x')
  await put('p/bad//x.txt', 'x')
  await put('p/' + 'n'.repeat(256), 'x')

  const created = await aws(tfs, ['fsx', 'create-data-repository-task', '--type', 'IMPORT_METADATA_FROM_REPOSITORY', '--file-system-id', id,
    '--paths', `s3://${BUCKET}/p/good`, '--report', 'Enabled=false'])
  t.equal(created.code, 0, created.stderr)
  const first = created.json.DataRepositoryTask
  t.match(first, { Lifecycle: 'PENDING', Type: 'IMPORT_METADATA_FROM_REPOSITORY', FileSystemId: id, Paths: [`s3://${BUCKET}/p/good`], Report: { Enabled: false } })
  t.match(first.TaskId, /^task-[0-9a-f]{17}$/)
  t.equal(first.ResourceARN, `arn:aws:fsx:us-east-1:000000000000:task/${first.TaskId}`)
  const done = await waitEnded(tfs, first.TaskId)
  t.equal(done.Lifecycle, 'SUCCEEDED')
  t.match(done.Status, { TotalCount: 3, SucceededCount: 3, FailedCount: 0 })
  t.ok(done.StartTime >= done.CreationTime && done.EndTime >= done.StartTime, 'creation ≤ start ≤ end')
  t.notOk('FailureDetails' in done)

  t.equal((await tfs.sh("stat -c '%a %u %g %Y %s' ns1/good/a.txt")).stdout.trim(), '640 1000 1000 1595002920 14', 'FSx metadata applied')
  t.equal((await tfs.sh("stat -c '%a %u %g' ns1/good/plain.txt")).stdout.trim(), '755 0 0', 'no metadata: FSx defaults')
  t.equal((await tfs.sh('cat ns1/good/a.txt')).stdout, 'with metadata\n', 'content loads on first read')
  t.equal((await tfs.sh('sha256sum ns1/good/dir/b.bin')).stdout.split(' ')[0], sha(big))
  t.equal((await tfs.sh('ls ns1')).stdout.trim(), 'good', 'only the given prefix was imported')

  // On a terminal, --wait draws a progress bar (script(1) gives the CLI a pseudo-terminal).
  const tty = await run('script', ['-qec', `${process.execPath} ${CLI} task import s3://${BUCKET}/p/good --report s3://${BUCKET}/p/reports/ --wait --config ${tfs.configPath}`, '/dev/null'])
  t.equal(tty.code, 0, 'SUCCEEDED: exit 0')
  t.match(tty.stdout, /task-[0-9a-f]{17} SUCCEEDED +\[█{30}\] 3\/3 objects, 0 failed/, 'a bar on the terminal')
  const again = /created import task (task-[0-9a-f]{17})/.exec(tty.stdout)?.[1] as string
  t.equal(await get(`p/reports/${again}/report.csv`), '', 'no failures: an empty report')

  // The whole repository (the report above included), with a report, through the s3link CLI: the
  // bad keys fail and are listed.
  const full = await tfs.cli(['task', 'import', `s3://${BUCKET}/p/`, '--report', `s3://${BUCKET}/p/reports`, '--wait', '--json'])
  t.equal(full.code, 1, 'a task with failed files exits 1')
  const failed = JSON.parse(full.stdout)
  t.match(full.stderr, new RegExp(`task ${failed.TaskId as string} FAILED: 3 of 7 objects could not be imported`))
  t.match(failed, { Lifecycle: 'FAILED', Status: { TotalCount: 7, SucceededCount: 4, FailedCount: 3 }, Report: { Enabled: true, Path: `s3://${BUCKET}/p/reports` } })
  t.match(full.stderr, /FAILED, 7\/7 objects, 3 failed/, 'plain progress lines when stderr is no terminal')
  const report = await get(`p/reports/${failed.TaskId as string}/report.csv`)
  t.equal(report,
    '"ns1/a,b//c.txt",failed,S3ImportObjectPathNotPosixCompliant\n' +
    'ns1/bad//x.txt,failed,S3ImportObjectPathNotPosixCompliant\n' +
    `ns1/${'n'.repeat(256)},failed,S3ImportObjectPathNotPosixCompliant\n`, 'report.csv: failed files only, no header, RFC 4180 quoting')

  const list = await tfs.cli(['task', 'list'])
  t.equal(list.code, 0, list.stderr)
  t.match(list.stdout, new RegExp(`${failed.TaskId as string}\\s+import\\s+FAILED\\s+7/7 objects, 3 failed[^\\n]*\\n${again}\\s+import\\s+SUCCEEDED[^\\n]*\\n${first.TaskId as string}\\s+import\\s+SUCCEEDED\\s+3/3 objects`), 'newest first')
  const show = await tfs.cli(['task', 'show', first.TaskId])
  t.match(show.stdout, /SUCCEEDED[\s\S]*paths: +s3:\/\/tasks\/p\/good[\s\S]*report: +off/)
  const ended = await aws(tfs, ['fsx', 'cancel-data-repository-task', '--task-id', first.TaskId])
  t.match(ended.stderr, /DataRepositoryTaskEnded/, 'an ended task cannot be canceled')

  const page = await aws(tfs, ['fsx', 'describe-data-repository-tasks', '--filters', 'Name=task-lifecycle,Values=SUCCEEDED'])
  t.equal(page.code, 0, page.stderr)
  t.same(page.json.DataRepositoryTasks.map((x: any) => x.TaskId), [again, first.TaskId], 'task-lifecycle filter')
  const pages: string[][] = []
  let token: string | undefined
  do {
    const r = await fsx(tfs, 'DescribeDataRepositoryTasks', { MaxResults: 2, ...(token !== undefined ? { NextToken: token } : {}) })
    pages.push(r.body.DataRepositoryTasks.map((x: any) => x.TaskId))
    token = r.body.NextToken
  } while (token !== undefined)
  t.same(pages, [[failed.TaskId, again], [first.TaskId]], 'pages of MaxResults, newest first, NextToken until the last')
})

t.test('BatchImportMetaDataOnCreate runs an import task once, also across a restart', async (t) => {
  const { tfs, put, link } = await setup(t)
  await put('q/one.txt', '1\n', META)
  await put('q/sub/two.txt', '2\n')
  const draId = await link('/ns2', `s3://${BUCKET}/q/`, true)
  let tasks: any[] = []
  for (const end = Date.now() + 10_000; tasks.length === 0 && Date.now() < end; await new Promise((resolve) => setTimeout(resolve, 100))) {
    tasks = (await fsx(tfs, 'DescribeDataRepositoryTasks', { Filters: [{ Name: 'data-repository-association-id', Values: [draId] }] })).body.DataRepositoryTasks
  }
  t.equal(tasks.length, 1, 'one task for the new association')
  t.same(tasks[0].Paths, [`s3://${BUCKET}/q/`])
  const done = await waitEnded(tfs, tasks[0].TaskId)
  t.match(done, { Lifecycle: 'SUCCEEDED', Status: { TotalCount: 2, SucceededCount: 2 } })
  t.equal((await tfs.sh('cat ns2/one.txt ns2/sub/two.txt')).stdout, '1\n2\n')
  t.equal((await tfs.sh("stat -c '%a %u %g %Y' ns2/one.txt")).stdout.trim(), '640 1000 1000 1595002920')

  await tfs.restart()
  await new Promise((resolve) => setTimeout(resolve, 700))
  const after = await fsx(tfs, 'DescribeDataRepositoryTasks', {})
  t.equal(after.body.DataRepositoryTasks.length, 1, 'no second batch import after a restart')
})

t.test('bad requests get the FSx error and change nothing', async (t) => {
  const { tfs, id, link } = await setup(t)
  await link('/ns1', `s3://${BUCKET}/p/`)
  const create = async (...args: string[]) => await aws(tfs, ['fsx', 'create-data-repository-task', '--file-system-id', id, ...args])
  const cases: Array<[string, Promise<{ stderr: string, code: number }>, RegExp]> = [
    ['unknown task id', aws(tfs, ['fsx', 'describe-data-repository-tasks', '--task-ids', 'task-0123456789abcdef0']), /DataRepositoryTaskNotFound/],
    ['cancel of an unknown task', aws(tfs, ['fsx', 'cancel-data-repository-task', '--task-id', 'task-0123456789abcdef0']), /DataRepositoryTaskNotFound/],
    ['malformed task id', aws(tfs, ['fsx', 'cancel-data-repository-task', '--task-id', 'task-xyz-not-hex']), /BadRequest.*TaskId/],
    ['unknown type', create('--type', 'DEFRAGMENT', '--report', 'Enabled=false'), /BadRequest.*Type/],
    ['export outside every DRA', create('--type', 'EXPORT_TO_REPOSITORY', '--paths', 'elsewhere', '--report', 'Enabled=false'), /BadRequest.*elsewhere lies outside every data repository association/],
    ['release outside every DRA', create('--type', 'RELEASE_DATA_FROM_FILESYSTEM', '--paths', 'elsewhere', '--report', 'Enabled=false'), /BadRequest.*elsewhere lies outside every data repository association/],
    ['path outside every DRA', create('--type', 'IMPORT_METADATA_FROM_REPOSITORY', '--paths', `s3://${BUCKET}/elsewhere/`, '--report', 'Enabled=false'), /BadRequest.*s3:\/\/tasks\/elsewhere\/ lies outside every data repository association/],
    ['a path that is no S3 path', create('--type', 'IMPORT_METADATA_FROM_REPOSITORY', '--paths', '/ns1/x', '--report', 'Enabled=false'), /BadRequest.*not an S3 path/],
    ['report without a path', create('--type', 'IMPORT_METADATA_FROM_REPOSITORY', '--report', 'Enabled=true'), /BadRequest.*Report: Path, Format/],
    ['report outside every DRA', create('--type', 'IMPORT_METADATA_FROM_REPOSITORY', '--report', `Enabled=true,Path=s3://${BUCKET}/r,Format=REPORT_CSV_20191124,Scope=FAILED_FILES_ONLY`), /BadRequest.*Report.Path/],
    ['another file system', aws(tfs, ['fsx', 'create-data-repository-task', '--file-system-id', 'fs-0123456789abcdef0', '--type', 'IMPORT_METADATA_FROM_REPOSITORY', '--report', 'Enabled=false']), /FileSystemNotFound/]
  ]
  for (const [what, result, error] of cases) {
    const r = await result
    t.not(r.code, 0, what)
    t.match(r.stderr, error, what)
  }
  t.same((await fsx(tfs, 'DescribeDataRepositoryTasks', {})).body.DataRepositoryTasks, [], 'no task was created')

  const token = ['--client-request-token', 'tok-1', '--type', 'IMPORT_METADATA_FROM_REPOSITORY', '--report', 'Enabled=false']
  const a = await create(...token)
  const b = await create(...token)
  t.equal(b.json.DataRepositoryTask.TaskId, a.json.DataRepositoryTask.TaskId, 'a repeated ClientRequestToken answers with the same task')
  const c = await create(...token, '--paths', `s3://${BUCKET}/p/x`)
  t.match(c.stderr, /IncompatibleParameterError/, 'the same token with other parameters')
  t.equal((await fsx(tfs, 'DescribeDataRepositoryTasks', {})).body.DataRepositoryTasks.length, 1)
  const cli = await tfs.cli(['task', 'import', 'not-s3'])
  t.equal(cli.code, 1)
  t.match(cli.stderr, /S3PATH: "not-s3" is not an S3 path/, 'the CLI checks paths before sending')
})
