// `s3link hsm state|restore` (issue 5) against the real daemon, mount and embedded S3 server: states
// in lfs hsm_state's format, a parallel restore of a directory, paths as the user types them, and
// failures when S3 is gone. S3 is reached through a proxy so that "S3 stopped" is one close().
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { S3Client, PutObjectCommand } from '@aws-sdk/client-s3'
import { CLI, run, startFs, startS3, type TestFs } from '../fixtures/harness'
import { startProxy } from '../fixtures/proxy'
import { until } from '../fixtures/until'

const BUCKET = 'hsm-bucket'
const RELEASED = '(0x0000000d) released exists archived, archive_id:1'
const LOADED = '(0x00000009) exists archived, archive_id:1'

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex')
const exists = async (tfs: TestFs, p: string): Promise<boolean> => (await tfs.sh(`test -e '${p}'`)).code === 0
/** The CLI run from a directory (for relative PATHs). */
const cliIn = async (tfs: TestFs, cwd: string, args: string[]) => await run(process.execPath, [CLI, ...args, '--config', tfs.configPath], { cwd })

t.test('hsm state and hsm restore', async (t) => {
  const s3 = await startS3(t, [BUCKET])
  const proxy = await startProxy(t, s3.port)
  const c = new S3Client({
    endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED'
  })
  t.teardown(() => c.destroy())
  const put = async (key: string, body: Buffer | string): Promise<void> => { await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body })) }
  const tfs = await startFs(t, { config: { importIntervalMs: 300 } })
  const add = await tfs.addBucket(BUCKET, proxy.endpoint)
  t.equal(add.code, 0, add.stderr)
  const dra = await tfs.cli(['dra', 'create', '/ns1', `s3://${BUCKET}/p/`, '--import', 'NEW,CHANGED,DELETED', '--wait'])
  t.equal(dra.code, 0, dra.stderr)

  const bodies: Record<string, Buffer> = {
    'a.txt': Buffer.from('hello from S3\n'),
    'sub/big.bin': randomBytes(9 << 20), // more than one of restore's 8 MiB steps
    'sub/deep/c.bin': randomBytes(300_000),
    'sub/empty': Buffer.alloc(0)
  }
  for (const [name, body] of Object.entries(bodies)) await put(`p/${name}`, body)
  await until('the objects are imported', async () => {
    for (const name of Object.keys(bodies)) if (!await exists(tfs, `ns1/${name}`)) return false
    return true
  })
  t.equal((await tfs.sh('echo local > ns1/local.txt')).code, 0)

  // ---- hsm state ----
  const state = await tfs.cli(['hsm', 'state', tfs.p('ns1/a.txt'), tfs.p('ns1/sub'), tfs.p('ns1/local.txt')])
  t.equal(state.code, 0, state.stderr)
  t.equal(state.stdout, `${tfs.p('ns1/a.txt')}: ${RELEASED}\n${tfs.p('ns1/sub')}: (0x00000000)\n${tfs.p('ns1/local.txt')}: (0x00000000)\n`,
    'imported: released exists archived; a directory and a file never exported: 0x0 (lfs hsm_state\'s format)')
  const relative = await cliIn(tfs, tfs.p('ns1/sub'), ['hsm', 'state', '../a.txt', 'big.bin', '.'])
  t.equal(relative.stdout, `../a.txt: ${RELEASED}\nbig.bin: ${RELEASED}\n.: (0x00000000)\n`, 'paths relative to the cwd, printed as given')
  const missing = await cliIn(tfs, tfs.p('ns1'), ['hsm', 'state', 'nope.txt', 'a.txt'])
  t.equal(missing.code, 1, 'a missing path: exit 1')
  t.equal(missing.stdout, `a.txt: ${RELEASED}\n`, 'the other paths are still printed')
  t.match(missing.stderr, /nope\.txt: No such file or directory/)
  const json = await tfs.cli(['hsm', 'state', tfs.p('ns1/a.txt'), '--json'])
  t.same(JSON.parse(json.stdout), [{ path: tfs.p('ns1/a.txt'), flags: 0x0d, state: RELEASED }], '--json')

  // ---- outside the mount: refused before anything is done ----
  const outside = await tfs.cli(['hsm', 'restore', tfs.p('ns1/a.txt'), '/etc'])
  t.equal(outside.code, 1)
  t.match(outside.stderr, /\/etc is not in the file system/)
  t.equal((await tfs.cli(['hsm', 'state', tfs.p('ns1/a.txt')])).stdout, `${tfs.p('ns1/a.txt')}: ${RELEASED}\n`, 'nothing was loaded')

  // ---- restore a directory ----
  const restored = await cliIn(tfs, tfs.mountpoint, ['hsm', 'restore', 'ns1', '--parallel', '3'])
  t.equal(restored.code, 0, restored.stderr)
  t.equal(restored.stdout, `restored 4 files (9.3 MiB), 1 already loaded\n`)
  t.match(restored.stderr, /hsm restore: 4 released files \(9\.3 MiB\) to load/, 'progress on stderr (not a terminal: plain lines)')
  const after = await cliIn(tfs, tfs.p('ns1'), ['hsm', 'state', ...Object.keys(bodies)])
  t.equal(after.stdout, Object.keys(bodies).map((n) => `${n}: ${LOADED}\n`).join(''), 'every file is exists archived now')
  for (const [name, body] of Object.entries(bodies)) {
    t.equal((await tfs.sh(`sha256sum ns1/${name}`)).stdout.split(' ')[0], sha(body), `${name}: the content is the object's`)
  }
  const again = await tfs.cli(['hsm', 'restore', tfs.p('ns1'), '--json'])
  t.equal(again.code, 0, again.stderr)
  t.same(JSON.parse(again.stdout), { loaded: 0, skipped: 5, bytes: 0, total: 0, failed: [] }, 'a second restore is a no-op')

  // ---- S3 gone: the failures are named, exit 1 ----
  await put('p/late/x.bin', randomBytes(1000))
  await put('p/late/y.txt', 'y\n')
  await until('the late objects are imported', async () => await exists(tfs, 'ns1/late/x.bin') && await exists(tfs, 'ns1/late/y.txt'))
  await proxy.close()
  const failed = await cliIn(tfs, tfs.p('ns1'), ['hsm', 'restore', 'late/', 'a.txt'])
  t.equal(failed.code, 1)
  t.match(failed.stdout, /restored 0 files \(0 B\), 1 already loaded, 2 failed/)
  t.match(failed.stderr, /cannot restore late\/x\.bin: .*S3/)
  t.match(failed.stderr, /cannot restore late\/y\.txt: .*S3/)
  t.equal((await cliIn(tfs, tfs.p('ns1'), ['hsm', 'state', 'late/x.bin'])).stdout, `late/x.bin: ${RELEASED}\n`, 'still released')
})
