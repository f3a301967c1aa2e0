// `s3link hsm archive` (issue 6, lfs hsm_archive) against the real daemon, mount and embedded S3
// server: a file and a directory exported on request whatever the DRA's automatic policy, HSM
// states from 0x0 to exists archived, progress (plain and on a terminal), the background form
// without --wait, and failures named with exit 1.
import t from 'tap'
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import { CLI, run, startFs, startS3, type TestFs } from '../fixtures/harness'
import { until } from '../fixtures/until'
import { s3Client } from '../fixtures/s3'

const BUCKET = 'archive-me'
const NEVER = '(0x00000000)'
const CLEAN = '(0x00000009) exists archived, archive_id:1'
const DIRTY = '(0x0000000b) exists dirty archived, archive_id:1'

/** The CLI run from a directory (for relative PATHs). */
const cliIn = async (tfs: TestFs, cwd: string, args: string[]) => await run(process.execPath, [CLI, ...args, '--config', tfs.configPath], { cwd })

t.test('hsm archive', async (t) => {
  const s3 = await startS3(t, [BUCKET])
  const c = s3Client(t, s3.endpoint)
  const keys = async (prefix: string): Promise<string[]> => ((await c.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }))).Contents ?? []).map((o) => o.Key ?? '').sort()
  const body = async (key: string): Promise<string> => await (await c.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body?.transformToString('utf8') ?? ''
  const tfs = await startFs(t, { config: { importIntervalMs: 3_600_000 } })
  const add = await tfs.addBucket(BUCKET, s3.endpoint)
  t.equal(add.code, 0, add.stderr)
  // No automatic export at all, and automatic export of deletions only: new files stay local until archived.
  for (const [dir, extra] of [['/ns1', []], ['/ns2', ['--export', 'DELETED']]] as Array<[string, string[]]>) {
    const dra = await tfs.cli(['dra', 'create', dir, `s3://${BUCKET}${dir}/`, ...extra, '--wait'])
    t.equal(dra.code, 0, dra.stderr)
  }
  const state = async (p: string): Promise<string> => (await cliIn(tfs, tfs.mountpoint, ['hsm', 'state', p])).stdout.slice(p.length + 2).trim()

  // ---- one file ----
  t.equal((await tfs.sh('echo hello > ns1/a.txt && mkdir -p ns1/dir/sub && echo 1 > ns1/dir/one && echo 22 > ns1/dir/sub/two && ln -s one ns1/dir/link')).code, 0)
  t.equal(await state('ns1/a.txt'), NEVER)
  const one = await cliIn(tfs, tfs.p('ns1'), ['hsm', 'archive', 'a.txt', '--wait'])
  t.equal(one.code, 0, one.stderr)
  t.equal(one.stdout, 'archived 1 file (6 B), 0 exported already\n')
  t.equal(await state('ns1/a.txt'), CLEAN, 'exists archived')
  t.equal(await body('ns1/a.txt'), 'hello\n')
  t.equal((await c.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'ns1/a.txt' }))).Metadata?.['file-permissions'], '0100644')
  t.same(await keys('ns1/'), ['ns1/a.txt'], 'only that file')

  // ---- a directory, recursively; progress on stderr ----
  const dir = await tfs.cli(['hsm', 'archive', tfs.p('ns1/dir'), '--wait', '--parallel', '2'])
  t.equal(dir.code, 0, dir.stderr)
  t.equal(dir.stdout, 'archived 5 files (5 B), 0 exported already\n', 'dir, dir/link, dir/one, dir/sub, dir/sub/two')
  t.match(dir.stderr, /hsm archive: 5 files \(5 B\) to export/, 'plain progress when stderr is no terminal')
  t.same(await keys('ns1/dir'), ['ns1/dir/', 'ns1/dir/link', 'ns1/dir/one', 'ns1/dir/sub/', 'ns1/dir/sub/two'])
  t.equal(await body('ns1/dir/sub/two'), '22\n')
  t.equal(await state('ns1/dir/sub/two'), CLEAN)
  const again = await tfs.cli(['hsm', 'archive', tfs.p('ns1'), '--wait', '--json'])
  t.same(JSON.parse(again.stdout), { archived: 0, skipped: 6, bytes: 0, total: 0, failed: [] }, 'nothing left: a no-op')

  // ---- dirty, then archived again; on a terminal, a bar ----
  t.equal((await tfs.sh('echo more >> ns1/dir/one')).code, 0)
  t.equal(await state('ns1/dir/one'), DIRTY)
  const tty = await run('script', ['-qec', `${process.execPath} ${CLI} hsm archive ${tfs.p('ns1')} --wait --config ${tfs.configPath}`, '/dev/null'])
  t.equal(tty.code, 0, tty.stdout)
  t.match(tty.stdout, /archive \[={30}\] 1\/1 files, 7 B of 7 B/, 'a bar on the terminal')
  t.equal(await body('ns1/dir/one'), '1\nmore\n')
  t.equal(await state('ns1/dir/one'), CLEAN)

  // ---- without --wait: started, done in the background; any automatic policy ----
  t.equal((await tfs.sh('echo bg > ns2/bg.txt')).code, 0)
  const bg = await tfs.cli(['hsm', 'archive', tfs.p('ns2/bg.txt')])
  t.equal(bg.code, 0, bg.stderr)
  t.equal(bg.stdout, 'archiving 1 path in the background (see: s3link hsm state PATH)\n')
  await until('archived in the background', async () => await state('ns2/bg.txt') === CLEAN)
  t.equal(await body('ns2/bg.txt'), 'bg\n')

  // ---- failures: named, exit 1; the other paths are still archived ----
  const long = `ns1/deep/${'a'.repeat(250)}/${'b'.repeat(250)}/${'c'.repeat(250)}/${'d'.repeat(250)}/${'f'.repeat(30)}`
  t.equal((await tfs.sh(`mkdir -p $(dirname ${long}) && echo x > ${long} && echo y > ns1/fine && echo z > outside`)).code, 0)
  const bad = await cliIn(tfs, tfs.mountpoint, ['hsm', 'archive', 'nope', 'outside', 'ns1/fine', 'ns1/deep', '--wait'])
  t.equal(bad.code, 1)
  t.match(bad.stderr, /cannot archive nope: No such file or directory/)
  t.match(bad.stderr, /cannot archive outside: \/outside is not in a data repository association/)
  t.match(bad.stderr, new RegExp(`cannot archive ${long}: PathSizeTooLong: its key would be 1043 bytes long`))
  t.match(bad.stdout, /archived 6 files \(2 B\), 0 exported already, 3 failed/, 'fine, deep and its four directories')
  t.equal(await state('ns1/fine'), CLEAN)
  t.equal(await state(long), NEVER, 'the file that failed is not archived')
  const noWait = await tfs.cli(['hsm', 'archive', tfs.p('nope')])
  t.equal(noWait.code, 1, 'without --wait the paths are still checked')
  t.match(noWait.stderr, /cannot archive .*nope: No such file or directory/)
})
