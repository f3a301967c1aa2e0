// RELEASE_DATA_FROM_FILESYSTEM tasks (issue 7) on a real mount against the embedded S3 server:
// exported clean files are released and read back; DurationSinceLastAccess counts atime, mtime and
// ctime (ctime cannot be set back through the mount: the test ages inodes in the stopped daemon's
// database, and the rule itself is unit tested on crafted inodes); dirty and never-exported files
// are left out; an open file is a ResourceBusy failure in failures.csv; cancel midway; the released
// state survives a restart; bad requests change nothing.
import t from 'tap'
import { GetObjectCommand } from '@aws-sdk/client-s3'
import { CLI, startFs, startS3, type TestFs } from '../fixtures/harness'
import { aws, fsx } from '../fixtures/aws'
import { Store } from '../../src/store/db'
import { inodeKey } from '../../src/store/keys'
import { eligibility, oldEnough } from '../../src/sync/task-release'
import { DAY_NS } from '../../src/namespace/clock'
import { lastAccessNs } from '../../src/namespace/inode'
import type { Inode } from '../../src/namespace/inode'
import { HS_ARCHIVED, HS_DIRTY, HS_EXISTS, HS_LOST, HS_RELEASED, IMPORTED_RELEASED } from '../../src/namespace/hsm'
import { callApi } from '../../src/api/client'
import { s3Client } from '../fixtures/s3'

const BUCKET = 'reltask'
const NEVER = '(0x00000000)'
const CLEAN = '(0x00000009) exists archived, archive_id:1'
const DIRTY = '(0x0000000b) exists dirty archived, archive_id:1'
const RELEASED = '(0x0000000d) released exists archived, archive_id:1'
const REPORT = { Enabled: true, Path: `s3://${BUCKET}/p/reports`, Format: 'REPORT_CSV_20191124', Scope: 'FAILED_FILES_ONLY' }

// ---- the rule, on crafted inodes ----

t.test('DurationSinceLastAccess: max(atime, mtime, ctime) against the creation time, strictly more than N days', async (t) => {
  const now = 1_000n * DAY_NS
  const file = (atime: bigint, mtime: bigint, ctime: bigint, hsm = HS_EXISTS | HS_ARCHIVED): Inode => ({
    ino: 2, mode: 0o100644, uid: 0, gid: 0, nlink: 1, size: 1, rdev: 0, atimeNs: atime, mtimeNs: mtime, ctimeNs: ctime, hsm,
    remote: { dra: 'dra-1', bucket: 'b', key: 'k', etag: '"e"', size: 1, modified: 0 }
  })
  const old = now - 30n * DAY_NS
  t.equal(lastAccessNs(file(1n, 3n, 2n)), 3n)
  t.ok(oldEnough(file(old, old, old), { nowNs: now, days: 10 }), 'all three 30 days old')
  t.notOk(oldEnough(file(now, old, old), { nowNs: now, days: 10 }), 'read recently (atime)')
  t.notOk(oldEnough(file(old, now, old), { nowNs: now, days: 10 }), 'written recently (mtime)')
  t.notOk(oldEnough(file(old, old, now), { nowNs: now, days: 10 }), 'changed recently (ctime): touch -d cannot make a file old')
  t.notOk(oldEnough(file(now - 10n * DAY_NS, old, old), { nowNs: now, days: 10 }), 'exactly 10 days: not more than 10')
  t.ok(oldEnough(file(now - 10n * DAY_NS - 1n, old, old), { nowNs: now, days: 10 }), 'a nanosecond more')
  t.ok(oldEnough(file(now + DAY_NS, now + DAY_NS, now + DAY_NS), { nowNs: now, days: 0 }), '0 days: every file, even one touched after the creation')
  t.ok(oldEnough(file(now, now, now)), 'no rule (hsm release)')
  t.equal(eligibility(file(old, old, old), { nowNs: now, days: 10 }), undefined, 'eligible')
  t.equal(eligibility(file(now, now, now), { nowNs: now, days: 10 }), 'recent')
  t.equal(eligibility(file(old, old, old, HS_EXISTS | HS_DIRTY | HS_ARCHIVED)), 'dirty')
  t.equal(eligibility({ ...file(old, old, old, 0), remote: undefined }), 'not-archived', 'never exported')
  t.equal(eligibility(file(old, old, old, IMPORTED_RELEASED)), 'skip', 'released already')
  t.equal(eligibility(file(old, old, old, IMPORTED_RELEASED | HS_LOST)), 'skip', 'lost')
  t.equal(eligibility({ ...file(old, old, old), mode: 0o120777 }), 'skip', 'a symlink')
})

// ---- through the mount ----

async function setup (t: Tap.Test) {
  const s3 = await startS3(t, [BUCKET])
  const c = s3Client(t, s3.endpoint)
  const tfs = await startFs(t, { config: { importIntervalMs: 3_600_000 } })
  const add = await tfs.addBucket(BUCKET, s3.endpoint)
  t.equal(add.code, 0, add.stderr)
  // ns1 exports automatically; ns2 only on request (a dirty file there stays dirty).
  for (const [dir, prefix, extra] of [['/ns1', 'p', ['--export', 'NEW,CHANGED,DELETED']], ['/ns2', 'q', []]] as Array<[string, string, string[]]>) {
    const dra = await tfs.cli(['dra', 'create', dir, `s3://${BUCKET}/${prefix}/`, ...extra, '--wait'])
    t.equal(dra.code, 0, dra.stderr)
  }
  const id = JSON.parse((await tfs.cli(['status', tfs.name, '--json'])).stdout).id as string
  const body = async (key: string): Promise<string> => await (await c.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body?.transformToString('utf8') ?? ''
  const state = async (p: string): Promise<string> => (await tfs.cli(['hsm', 'state', tfs.p(p)])).stdout.slice(tfs.p(p).length + 2).trim()
  const create = async (input: object): Promise<any> => {
    const r = await fsx(tfs, 'CreateDataRepositoryTask', { Type: 'RELEASE_DATA_FROM_FILESYSTEM', FileSystemId: id, Report: { Enabled: false }, ...input })
    if (r.status !== 200) throw new Error(JSON.stringify(r.body))
    return r.body.DataRepositoryTask
  }
  const until = async (what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> => {
    for (const end = Date.now() + ms; Date.now() < end; await new Promise((resolve) => setTimeout(resolve, 150))) {
      if (await check()) return
    }
    throw new Error(`timed out waiting until ${what}`)
  }
  return { tfs, id, body, state, create, until }
}

async function task (tfs: TestFs, id: string): Promise<any> {
  return (await fsx(tfs, 'DescribeDataRepositoryTasks', { TaskIds: [id] })).body.DataRepositoryTasks[0]
}

async function waitFor (tfs: TestFs, id: string, ok: (x: any) => boolean, ms = 30_000): Promise<any> {
  for (const end = Date.now() + ms; ; await new Promise((resolve) => setTimeout(resolve, 50))) {
    const last = await task(tfs, id)
    if (ok(last)) return last
    if (Date.now() > end) throw new Error(`${id}: ${JSON.stringify(last)}`)
  }
}
const ended = (x: any): boolean => ['SUCCEEDED', 'FAILED', 'CANCELED'].includes(x.Lifecycle)

/** Sets atime, mtime and ctime of files `days` days back, in the database of the stopped daemon. */
async function age (tfs: TestFs, paths: string[], days: number): Promise<void> {
  const inos: number[] = []
  for (const p of paths) inos.push(Number((await tfs.sh(`stat -c %i '${p}'`)).stdout.trim()))
  await tfs.stop()
  const store = await Store.open(`${tfs.stateDir}/db`)
  try {
    const then = String(BigInt(Date.now()) * 1_000_000n - BigInt(days) * DAY_NS)
    for (const ino of inos) {
      const record = await store.get<Record<string, unknown>>(inodeKey(ino))
      if (record === undefined) throw new Error(`no inode ${ino}`)
      await store.batch([{ type: 'put', key: inodeKey(ino), value: { ...record, atime: then, mtime: then, ctime: then } }], { sync: true })
    }
  } finally {
    await store.close()
  }
  await tfs.mount()
}

t.test('a release task: days rule, counters, failures.csv, restart', async (t) => {
  const { tfs, body, state, create, until } = await setup(t)
  t.equal((await tfs.sh('mkdir -p ns1/d && printf aaaa > ns1/d/a && printf bb > ns1/d/b && printf c > ns1/c && printf open > ns1/open && ' +
    'printf one > ns2/dirty && printf new > ns2/new && printf out > outside')).code, 0)
  t.equal((await tfs.cli(['hsm', 'archive', tfs.p('ns2/dirty'), '--wait'])).code, 0)
  t.equal((await tfs.sh('printf two >> ns2/dirty')).code, 0)
  for (const f of ['ns1/d/a', 'ns1/d/b', 'ns1/c', 'ns1/open']) await until(`${f} exported`, async () => await state(f) === CLEAN)
  await age(tfs, ['ns1/d/a', 'ns1/d/b'], 30)
  // atime and mtime 30 days back, ctime now: not old enough.
  t.equal((await tfs.sh("touch -d '30 days ago' ns1/c")).code, 0)
  t.equal((await tfs.sh("stat -c '%X %Y' ns1/c")).stdout.trim().split(' ').every((s) => Date.now() / 1000 - Number(s) > 29 * 86400), true)

  // ---- DurationSinceLastAccess 10 days (the AWS CLI of the test hosts, 2.9, predates ReleaseConfiguration) ----
  const created = await create({ Paths: ['/'], ReleaseConfiguration: { DurationSinceLastAccess: { Unit: 'DAYS', Value: 10 } }, Report: REPORT })
  t.match(created, { Type: 'RELEASE_DATA_FROM_FILESYSTEM', Lifecycle: 'PENDING', Paths: ['/'], ReleaseConfiguration: { DurationSinceLastAccess: { Unit: 'DAYS', Value: 10 } } })
  const first = created.TaskId as string
  t.match(await waitFor(tfs, first, ended), { Lifecycle: 'SUCCEEDED', Status: { TotalCount: 2, SucceededCount: 2, FailedCount: 0 } }, 'd/a and d/b')
  t.equal(await body(`p/reports/${first}/failures.csv`), '', 'failures.csv: nothing failed')
  t.equal(await state('ns1/d/a'), RELEASED)
  t.equal(await state('ns1/d/b'), RELEASED)
  t.equal(await state('ns1/c'), CLEAN, 'touched 30 days back, but its ctime is now')
  t.equal(await state('ns1/open'), CLEAN, 'recent')

  // ---- Value 0: every exported clean file; an open one fails with ResourceBusy ----
  const cmd = `exec 3<ns1/open; ${process.execPath} ${CLI} task release ns1 ns2 --days 0 --report s3://${BUCKET}/q/r/ --wait --json --config ${tfs.configPath}; s=$?; exec 3<&-; exit $s`
  const r = await tfs.sh(cmd)
  t.equal(r.code, 1, 'a task with failed files exits 1')
  const second = JSON.parse(r.stdout)
  t.match(second, { Lifecycle: 'FAILED', Paths: ['ns1', 'ns2'], Status: { TotalCount: 2, SucceededCount: 1, FailedCount: 1 }, FailureDetails: { Message: '1 of 2 files could not be released: the completion report lists them' } })
  t.match(r.stderr, new RegExp(`task ${second.TaskId as string} FAILED: 1 of 2 files could not be released`))
  t.equal(await body(`q/r/${second.TaskId as string}/failures.csv`), 'ns1/open,failed,ResourceBusy\n')
  t.equal(await state('ns1/c'), RELEASED)
  t.equal(await state('ns1/open'), CLEAN, 'open: left alone')
  t.equal(await state('ns2/dirty'), DIRTY, 'dirty: not eligible, not counted')
  t.equal(await state('ns2/new'), NEVER, 'never exported: not eligible, not counted')
  t.equal(await state('outside'), NEVER)
  const shown = await tfs.cli(['task', 'show', first])
  t.match(shown.stdout, /type:\s+RELEASE_DATA_FROM_FILESYSTEM[\s\S]*accessed: more than 10 days before creation[\s\S]*progress: 2\/2 files[\s\S]*failures.csv/)
  const list = await tfs.cli(['task', 'list'])
  t.match(list.stdout, new RegExp(`${first}\\s+release\\s+SUCCEEDED\\s+2/2 files`))

  // ---- released stays released across a restart; reads load the content ----
  await tfs.restart()
  t.equal(await state('ns1/d/a'), RELEASED)
  t.equal((await tfs.sh('cat ns1/d/a ns1/d/b ns1/c ns2/dirty')).stdout, 'aaaabbconetwo')
  t.equal(await state('ns1/d/a'), CLEAN)
  const byDra = await fsx(tfs, 'DescribeDataRepositoryTasks', { Filters: [{ Name: 'data-repository-association-id', Values: [(await fsx(tfs, 'DescribeDataRepositoryAssociations', {})).body.Associations.find((d: any) => d.FileSystemPath === '/ns2').AssociationId] }] })
  t.same(byDra.body.DataRepositoryTasks.map((x: any) => x.TaskId).sort(), [first, second.TaskId].sort(), 'the association filter reads release Paths as file-system paths (/ covers all)')
})

t.test('bad requests get BadRequest and create nothing', async (t) => {
  const { tfs, id } = await setup(t)
  // ReleaseConfiguration over the socket: the AWS CLI of the test hosts (2.9) cannot send it.
  const wire = async (input: object): Promise<any> => await fsx(tfs, 'CreateDataRepositoryTask', { Type: 'RELEASE_DATA_FROM_FILESYSTEM', FileSystemId: id, Report: { Enabled: false }, ...input })
  const days = (d: object): object => ({ ReleaseConfiguration: { DurationSinceLastAccess: d } })
  const wired: Array<[string, object, string, RegExp]> = [
    ['ReleaseConfiguration on an export task', { Type: 'EXPORT_TO_REPOSITORY', ...days({ Unit: 'DAYS', Value: 1 }) }, 'BadRequest', /^ReleaseConfiguration applies to RELEASE_DATA_FROM_FILESYSTEM tasks only$/],
    ['ReleaseConfiguration on an import task', { Type: 'IMPORT_METADATA_FROM_REPOSITORY', ...days({ Unit: 'DAYS', Value: 0 }) }, 'BadRequest', /ReleaseConfiguration applies to RELEASE_DATA_FROM_FILESYSTEM/],
    ['Unit not DAYS', days({ Unit: 'HOURS', Value: 1 }), 'BadRequest', /^ReleaseConfiguration.DurationSinceLastAccess.Unit: Invalid enum value. Expected 'DAYS', received 'HOURS'$/],
    ['negative Value', days({ Unit: 'DAYS', Value: -1 }), 'BadRequest', /^ReleaseConfiguration.DurationSinceLastAccess.Value: .*greater than or equal to 0/],
    ['a fraction of a day', days({ Unit: 'DAYS', Value: 1.5 }), 'BadRequest', /^ReleaseConfiguration.DurationSinceLastAccess.Value: /],
    ['no Value', days({ Unit: 'DAYS' }), 'BadRequest', /^ReleaseConfiguration.DurationSinceLastAccess.Value: is required$/],
    ['no Unit', days({ Value: 3 }), 'BadRequest', /^ReleaseConfiguration.DurationSinceLastAccess.Unit: is required$/]
  ]
  for (const [what, input, type, message] of wired) {
    const r = await wire(input)
    t.equal(r.status, 400, what)
    t.equal(r.body.__type, type, what)
    t.match(r.body.message ?? r.body.Message, message, what)
  }
  const create = async (...args: string[]) => await aws(tfs, ['fsx', 'create-data-repository-task', '--file-system-id', id, '--report', 'Enabled=false', ...args])
  const rel = ['--type', 'RELEASE_DATA_FROM_FILESYSTEM']
  const cases: Array<[string, string[], RegExp]> = [
    ['CapacityToRelease (File Cache)', [...rel, '--capacity-to-release', '5'], /BadRequest.*CapacityToRelease applies to AUTO_RELEASE_DATA/],
    ['a path outside every DRA', [...rel, '--paths', 'elsewhere'], /BadRequest.*elsewhere lies outside every data repository association/],
    ['a .. component', [...rel, '--paths', 'ns1/../x'], /BadRequest.*\.\. components/],
    ['AUTO_RELEASE_DATA', ['--type', 'AUTO_RELEASE_DATA'], /UnsupportedOperation.*File Cache/]
  ]
  for (const [what, args, error] of cases) {
    const r = await create(...args)
    t.not(r.code, 0, what)
    t.match(r.stderr, error, what)
  }
  t.same((await fsx(tfs, 'DescribeDataRepositoryTasks', {})).body.DataRepositoryTasks, [], 'no task was created')
  // The CLI: checked before sending, or the daemon's message; exit 1 and nothing created.
  const negative = await tfs.cli(['task', 'release', '--days', '-1'])
  t.equal(negative.code, 1)
  t.match(negative.stderr, /--days: "-1" is not a whole number of days/)
  const outside = await tfs.cli(['task', 'release', tfs.p('elsewhere')])
  t.equal(outside.code, 1)
  t.match(outside.stderr, /elsewhere lies outside every data repository association \(\/ns1, \/ns2\)/)
  t.equal(outside.stdout, '')
  t.same((await fsx(tfs, 'DescribeDataRepositoryTasks', {})).body.DataRepositoryTasks, [])
  // A good request through the AWS CLI: no ReleaseConfiguration is Value 0; nothing exported, nothing to release.
  const ok = await create(...rel, '--paths', 'ns1', 'ns2/')
  t.equal(ok.code, 0, ok.stderr)
  t.match(ok.json.DataRepositoryTask, { Type: 'RELEASE_DATA_FROM_FILESYSTEM', Lifecycle: 'PENDING', Paths: ['ns1', 'ns2/'] })
  t.match(await waitFor(tfs, ok.json.DataRepositoryTask.TaskId, ended), { Lifecycle: 'SUCCEEDED', Status: { TotalCount: 0, SucceededCount: 0, FailedCount: 0 } })
  // A path in a DRA that does not exist fails the task (FSx: an invalid path fails it).
  const missing = await fsx(tfs, 'CreateDataRepositoryTask', { Type: 'RELEASE_DATA_FROM_FILESYSTEM', FileSystemId: id, Report: { Enabled: false }, Paths: ['ns1/nope'] })
  t.equal(missing.status, 200)
  t.match(await waitFor(tfs, missing.body.DataRepositoryTask.TaskId, ended), { Lifecycle: 'FAILED', FailureDetails: { Message: /^Paths could not be released: ns1\/nope: / } })
})

t.test('cancel: the file in hand finishes, the rest stays local', async (t) => {
  const { tfs, create } = await setup(t)
  // Releases run one at a time, 0.3-2 ms each: 600 files take a fraction of a second. The walk goes in
  // name order (f1, f10, f100, …): once f1 is released, the cancel (over the socket, a few ms)
  // lands midway. The counters, saved once a second, would be too late to wait for.
  const N = 600
  t.equal((await tfs.sh(`mkdir ns2/many && cd ns2/many && for i in $(seq 1 ${N}); do echo "$i" > f$i; done`)).code, 0)
  const archived = await tfs.cli(['hsm', 'archive', tfs.p('ns2/many'), '--parallel', '32', '--wait'])
  t.equal(archived.code, 0, archived.stderr)
  const running = await create({ Paths: ['ns2/many'] })
  for (const end = Date.now() + 30_000; ; await new Promise((resolve) => setTimeout(resolve, 2))) {
    const r = await callApi(tfs.apiSocket, 'POST', '/api/hsm/state', { json: { paths: ['/ns2/many/f1'] } })
    if ((r.body.states[0].flags & HS_RELEASED) !== 0) break
    if (Date.now() > end) throw new Error('f1 was never released')
  }
  const cancel = await fsx(tfs, 'CancelDataRepositoryTask', { TaskId: running.TaskId })
  t.same(cancel.body, { Lifecycle: 'CANCELING', TaskId: running.TaskId })
  const done = await waitFor(tfs, running.TaskId, ended)
  t.equal(done.Lifecycle, 'CANCELED')
  const { TotalCount, SucceededCount, FailedCount } = done.Status
  t.ok(SucceededCount > 0 && SucceededCount < N, `some released, not all (${SucceededCount as number} of ${N})`)
  t.equal(FailedCount, 0)
  t.equal(TotalCount, SucceededCount, 'nothing found after the cancel: the file in hand finished and nothing else started')
  // Count released files in the mount (one getfattr call for all of them).
  const states = (await tfs.sh('getfattr --absolute-names --only-values -n user.s3link.hsm_state ns2/many/* | grep -o "released" | wc -l')).stdout.trim()
  t.equal(Number(states), SucceededCount, 'as many released files as the task counted; the rest are local')
  // A released file stays released after a restart, and reads back.
  await tfs.restart()
  const after = (await tfs.sh('getfattr --absolute-names --only-values -n user.s3link.hsm_state ns2/many/* | grep -o "released" | wc -l')).stdout.trim()
  t.equal(Number(after), SucceededCount, 'the same after a restart')
  t.equal((await tfs.sh('cat ns2/many/f1 ns2/many/f600')).stdout, '1\n600\n')
})
