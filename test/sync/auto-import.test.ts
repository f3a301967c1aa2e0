// Automatic import by listing, through the real mount: objects put directly into the embedded S3
// server appear, change and disappear in the linked directory per the DRA's import policy, and
// are read lazily through the mount with normal tools.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { PutObjectCommand, DeleteObjectCommand, DeleteBucketCommand, CreateBucketCommand } from '@aws-sdk/client-s3'
import { startFs, startS3, type TestFs } from '../fixtures/harness'
import { aws } from '../fixtures/aws'
import { until, untilEqual } from '../fixtures/until'
import { s3Client } from '../fixtures/s3'

const BUCKET = 'auto-import'

async function setup (t: Tap.Test, events: string) {
  const s3 = await startS3(t, [BUCKET])
  const c = s3Client(t, s3.endpoint)
  const tfs = await startFs(t, { config: { importIntervalMs: 300, draCheckIntervalMs: 1000 } })
  const add = await tfs.addBucket(BUCKET, s3.endpoint)
  t.equal(add.code, 0, add.stderr)
  const id = JSON.parse((await tfs.cli(['status', tfs.name, '--json'])).stdout).id as string
  const args = ['fsx', 'create-data-repository-association', '--file-system-id', id, '--file-system-path', '/linked', '--data-repository-path', `s3://${BUCKET}/p/`]
  if (events !== '') args.push('--s3', `AutoImportPolicy={Events=[${events}]}`)
  const created = await aws(tfs, args)
  t.equal(created.code, 0, created.stderr)
  const draId = created.json.Association.AssociationId
  await until('the DRA is AVAILABLE', async () => (await aws(tfs, ['fsx', 'describe-data-repository-associations', '--association-ids', draId])).json?.Associations[0].Lifecycle === 'AVAILABLE')
  const put = async (key: string, body: Buffer | string, metadata?: Record<string, string>): Promise<void> => {
    await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, Metadata: metadata }))
  }
  const del = async (key: string): Promise<void> => { await c.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key })) }
  return { tfs, put, del, c }
}

const exists = async (tfs: TestFs, p: string): Promise<boolean> => (await tfs.sh(`test -e '${p}'`)).code === 0
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex')

t.test('NEW, CHANGED, DELETED: objects appear, change and disappear; content loads on first read', async (t) => {
  const { tfs, put, del } = await setup(t, 'NEW,CHANGED,DELETED')
  const big = randomBytes(5 << 20)
  await put('p/data/big.bin', big)
  await put('p/notes.txt', 'hello from S3\n', { 'file-permissions': '0100640', 'file-owner': '1000', 'file-group': '100', 'file-mtime': '1595002920000000000ns' })
  await put('p/plain.txt', 'no metadata\n')
  await until('the objects are imported', async () => await exists(tfs, 'linked/notes.txt') && await exists(tfs, 'linked/data/big.bin') && await exists(tfs, 'linked/plain.txt'))
  t.equal((await tfs.sh('stat -c "%a %u %g %Y %s" linked/notes.txt')).stdout.trim(), '640 1000 100 1595002920 14', 'FSx metadata: mode, owner, group, mtime; size from the object')
  t.equal((await tfs.sh('stat -c "%a %u %g" linked/plain.txt')).stdout.trim(), '755 0 0', 'no metadata: 0755 root:root, as FSx')
  t.match((await tfs.sh('getfattr --only-values -n user.s3link.hsm_state linked/data/big.bin')).stdout, /\(0x0000000d\) released exists archived/, 'imported files are released')
  t.equal((await tfs.sh('cat linked/notes.txt')).stdout, 'hello from S3\n', 'the first read loads the content')
  t.equal((await tfs.sh('sha256sum linked/data/big.bin')).stdout.split(' ')[0], sha(big), 'a 5 MiB file reads back whole')
  t.match((await tfs.sh('getfattr --only-values -n user.s3link.hsm_state linked/data/big.bin')).stdout, /\(0x00000009\) exists archived/, 'loaded: exists archived')

  await put('p/notes.txt', 'changed in S3, longer\n', { 'file-permissions': '0100600' })
  await untilEqual('the change is imported', async () => (await tfs.sh('cat linked/notes.txt')).stdout, 'changed in S3, longer\n')
  t.equal((await tfs.sh('stat -c "%a %u" linked/notes.txt')).stdout.trim(), '600 1000', 'mode from the new metadata; the owner it no longer carries is kept')

  await tfs.sh('echo local > linked/local-only.txt')
  await del('p/plain.txt')
  await until('the deletion is imported', async () => !(await exists(tfs, 'linked/plain.txt')))
  t.ok(await exists(tfs, 'linked/local-only.txt'), 'a file made here and never exported is not S3\'s to delete')
  await del('p/data/big.bin')
  await until('the emptied directory goes too', async () => !(await exists(tfs, 'linked/data')))
})

t.test('local changes not yet exported are kept over a change in S3', async (t) => {
  const { tfs, put } = await setup(t, 'NEW,CHANGED,DELETED')
  await put('p/f.txt', 'v1\n')
  await untilEqual('imported', async () => (await tfs.sh('cat linked/f.txt')).stdout, 'v1\n')
  t.equal((await tfs.sh('echo mine >> linked/f.txt')).code, 0)
  t.match((await tfs.sh('getfattr --only-values -n user.s3link.hsm_state linked/f.txt')).stdout, /exists dirty archived/)
  await put('p/f.txt', 'v2 from S3\n')
  await new Promise((resolve) => setTimeout(resolve, 1500))
  t.equal((await tfs.sh('cat linked/f.txt')).stdout, 'v1\nmine\n', 'the local change survives')
  t.match(tfs.readLog(), /LocalChangesNotExported/, 'and the kept conflict is in the log')
})

t.test('a policy without DELETED keeps files whose objects are gone; no policy imports nothing', async (t) => {
  const { tfs, put, del } = await setup(t, 'NEW,CHANGED')
  await put('p/keep.txt', 'x\n')
  await until('imported', async () => await exists(tfs, 'linked/keep.txt'))
  await del('p/keep.txt')
  await new Promise((resolve) => setTimeout(resolve, 1500))
  t.ok(await exists(tfs, 'linked/keep.txt'), 'still there')

  const none = await setup(t, '')
  await none.put('p/never.txt', 'x\n')
  await new Promise((resolve) => setTimeout(resolve, 1500))
  t.notOk(await exists(none.tfs, 'linked/never.txt'), 'no import policy: no automatic import')
})

t.test('a released file whose object changed unseen (no CHANGED policy): EIO, and lost_from_hsm in its state', async (t) => {
  const { tfs, put, del } = await setup(t, 'NEW')
  await put('p/v.txt', 'version one\n')
  await put('p/gone.txt', 'soon gone\n')
  await until('imported', async () => await exists(tfs, 'linked/v.txt') && await exists(tfs, 'linked/gone.txt'))
  await put('p/v.txt', 'version two, not imported\n')
  await del('p/gone.txt')
  for (const name of ['v.txt', 'gone.txt']) {
    const read = await tfs.sh(`cat linked/${name}`)
    t.not(read.code, 0, `reading ${name} fails`)
    t.match(read.stderr, /Input\/output error/, 'with EIO')
    t.match((await tfs.sh(`getfattr --only-values -n user.s3link.hsm_state linked/${name}`)).stdout, /released exists archived lost_from_hsm/, 'the HSM state says it is lost')
  }
  t.match(tfs.readLog(), /"event":"S3ObjectNotFound"/, 'and the log says why')
})

t.test('a released file whose bucket is gone: EIO, but not lost; it reads again once the bucket is back', async (t) => {
  const { tfs, put, del, c } = await setup(t, 'NEW')
  await put('p/b.txt', 'in a bucket\n')
  await until('imported', async () => await exists(tfs, 'linked/b.txt'))
  await del('p/b.txt')
  await c.send(new DeleteBucketCommand({ Bucket: BUCKET }))
  const read = await tfs.sh('cat linked/b.txt')
  t.not(read.code, 0, 'reading fails')
  t.match(read.stderr, /Input\/output error/, 'with EIO')
  t.match(tfs.readLog(), /"event":"S3BucketNotFound"/, 'the log names the missing bucket')
  const state = (await tfs.sh('getfattr --only-values -n user.s3link.hsm_state linked/b.txt')).stdout
  t.match(state, /released exists archived/, 'still released')
  t.notMatch(state, /lost_from_hsm/, 'and not marked lost: the object may well be there once the bucket is')
  await c.send(new CreateBucketCommand({ Bucket: BUCKET }))
  await put('p/b.txt', 'in a bucket\n')
  t.equal((await tfs.sh('cat linked/b.txt')).stdout, 'in a bucket\n', 'the same object in the bucket made again reads')
})
