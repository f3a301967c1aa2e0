// Hard links under automatic export (spec/fsx-dra.md §12.2): each link inside the DRA is its own
// object, and modifying the file through any link updates all of them; deleting one link deletes
// only its object. Through the real mount, to the embedded S3 server, across restarts and kill -9.
import t from 'tap'
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import { startFs, startS3 } from '../fixtures/harness'
import { until as untilHolds } from '../fixtures/until'
import { s3Client } from '../fixtures/s3'

const BUCKET = 'linked'

/** A check that throws (an object not there yet) counts as not yet. */
const until = async (what: string, check: () => Promise<boolean>, ms?: number): Promise<void> =>
  await untilHolds(what, async () => await check().catch(() => false), ms)

async function setup (t: Tap.Test) {
  const s3 = await startS3(t, [BUCKET])
  const c = s3Client(t, s3.endpoint)
  const tfs = await startFs(t, { config: { importIntervalMs: 3_600_000, draCheckIntervalMs: 1000 } })
  t.equal((await tfs.addBucket(BUCKET, s3.endpoint)).code, 0)
  t.equal((await tfs.cli(['dra', 'create', '/x', `s3://${BUCKET}/out/`, '--export', 'NEW,CHANGED,DELETED', '--wait'])).code, 0)
  const keys = async (): Promise<string> => ((await c.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'out/' }))).Contents ?? []).map((o) => o.Key ?? '').sort().join(',')
  const head = async (key: string): Promise<Record<string, string> | undefined> =>
    await c.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key })).then((h) => h.Metadata ?? {}, () => undefined)
  const body = async (key: string): Promise<string> =>
    await c.send(new GetObjectCommand({ Bucket: BUCKET, Key: key })).then(async (o) => await o.Body!.transformToString(), () => '<missing>')
  /** Every key holds `text`. */
  const hold = async (text: string, ...ks: string[]): Promise<boolean> => (await Promise.all(ks.map(body))).every((b) => b === text)
  const sh = async (command: string): Promise<void> => {
    const r = await tfs.sh(command)
    t.equal(r.code, 0, `${command} ${r.stderr}`)
  }
  return { tfs, keys, head, body, hold, sh }
}

t.test('a change through any link updates every object; deleting a link deletes only its object', async (t) => {
  const { tfs, keys, head, body, hold, sh } = await setup(t)
  await sh('mkdir x/d && echo one > x/a && ln x/a x/b && ln x/a x/d/c')
  await until('three objects', async () => await keys() === 'out/a,out/b,out/d/,out/d/c' && await hold('one\n', 'out/a', 'out/b', 'out/d/c'))

  await sh('echo two > x/a')
  await until('a write through a reaches every link', async () => await hold('two\n', 'out/a', 'out/b', 'out/d/c'))

  await sh('chmod 600 x/b')
  await until('chmod through b reaches every link', async () =>
    (await Promise.all(['out/a', 'out/b', 'out/d/c'].map(head))).every((m) => m?.['file-permissions'] === '0100600'))
  t.equal(await body('out/a'), 'two\n', 'a metadata change keeps the bytes')

  await sh('rm x/a')
  await until('only the object of a is deleted', async () => await keys() === 'out/b,out/d/,out/d/c')
  await sh('echo three >> x/b')
  await until('writes through b still reach every remaining link', async () => await hold('two\nthree\n', 'out/b', 'out/d/c'))
  t.equal(await keys(), 'out/b,out/d/,out/d/c', 'no object for the removed link')

  await sh('mv x/b x/e && echo four >> x/e')
  await until('the renamed link is updated, the old key gone', async () =>
    await keys() === 'out/d/,out/d/c,out/e' && await hold('two\nthree\nfour\n', 'out/e', 'out/d/c'))

  await sh('mv x/d x/g && echo five >> x/e')
  await until('a link in a renamed directory is updated', async () =>
    await keys() === 'out/e,out/g/,out/g/c' && await hold('two\nthree\nfour\nfive\n', 'out/e', 'out/g/c'))

  await sh('rm x/e && echo six >> x/g/c')
  await until('back to one name: a plain file', async () => await keys() === 'out/g/,out/g/c' && await hold('two\nthree\nfour\nfive\nsix\n', 'out/g/c'))
  await until('clean', async () => /\(0x00000009\) exists archived/.test((await tfs.sh('getfattr --only-values -n user.s3link.hsm_state x/g/c')).stdout))
})

t.test('hard links survive a restart and kill -9', async (t) => {
  const { tfs, keys, hold, sh } = await setup(t)
  await sh('mkdir x/d && echo one > x/a && ln x/a x/d/b')
  await until('both objects', async () => await hold('one\n', 'out/a', 'out/d/b'))
  await tfs.restart()
  await sh('echo two > x/d/b')
  await until('after a restart, a write through one link updates both', async () => await hold('two\n', 'out/a', 'out/d/b'))

  await sh('echo three > x/a')
  await tfs.kill9()
  await tfs.mount()
  await until('after kill -9, both hold what was closed before it', async () => await hold('three\n', 'out/a', 'out/d/b'))
  await sh('ln x/a x/c && rm x/d/b')
  await tfs.kill9()
  await tfs.mount()
  await sh('echo four > x/c')
  await until('links made and removed before kill -9 are known after it', async () =>
    await keys() === 'out/a,out/c,out/d/' && await hold('four\n', 'out/a', 'out/c'))
})
