// A batch import takes files from the listing alone (src/sync/batch-import.ts) and reads each
// object's metadata later, before anyone sees it (src/sync/listed-settler.ts). On a real mount
// against the embedded S3 server behind a fault proxy whose HEADs can be made to fail, so the
// moment metadata is read is under the test's control:
//  - the import needs no HEAD of a file; a lookup of an entry whose metadata S3 cannot give is EIO,
//    then, once S3 answers, stat shows the object's mode, owner, times and type (a symlink's object
//    is a symlink), and the objects without metadata FSx's defaults;
//  - what a restart finds unsettled is settled in the background: after it, no lookup needs S3;
//  - an object replaced or deleted between the listing and its HEAD;
//  - a second import of a changed object updates the metadata of an entry already settled;
//  - a renamed directory's unsettled files reach their new keys with their objects' metadata;
//  - automatic import's listing creates new files listed-only as well;
//  - a stop does not wait for HEADs a silent server holds.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { DeleteObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import { startFs, startS3 } from '../fixtures/harness'
import { startFaultProxy } from '../fixtures/fault-proxy'
import { s3Client } from '../fixtures/s3'
import { until, untilEqual } from '../fixtures/until'

const BUCKET = 'listed'
const META = { 'file-permissions': '0100640', 'file-owner': '1234', 'file-group': '5678', 'file-mtime': '1595002920000000000ns' }
const SYMLINK = { 'file-permissions': '0120777', 'file-owner': '1234', 'file-group': '5678' }
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex')

t.test('listed-only entries', async (t) => {
  const s3 = await startS3(t, [BUCKET])
  const c = s3Client(t, s3.endpoint)
  const proxy = await startFaultProxy(t, s3.port)
  // HEADs of objects (path style: /bucket/key), not of the bucket (its probe at DRA creation).
  const heads = (method: string, url: string): boolean => method === 'HEAD' && /^\/[^/?]+\/[^?]/.test(url)
  const put = async (key: string, body: Buffer | string, metadata?: Record<string, string>): Promise<void> => {
    await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, Metadata: metadata }))
  }
  const lastModified = async (key: string): Promise<number> =>
    Math.floor(((await c.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))).LastModified?.getTime() ?? 0) / 1000)

  const tfs = await startFs(t, { config: { importIntervalMs: 500 } }) // only /w has an import policy
  t.equal((await tfs.addBucket(BUCKET, proxy.endpoint)).code, 0)
  /** Links /dir to s3://BUCKET/dir/ and imports it with a task; HEADs fail meanwhile when told. */
  const importDir = async (dir: string, failHeads: boolean, linkArgs: string[] = []): Promise<any> => {
    proxy.faulty = heads
    proxy.mode = failHeads ? 'error' : 'pass'
    const made = await tfs.cli(['dra', 'create', `/${dir}`, `s3://${BUCKET}/${dir}/`, ...linkArgs, '--wait'])
    t.equal(made.code, 0, made.stderr)
    const task = await tfs.cli(['task', 'import', `s3://${BUCKET}/${dir}/`, '--wait', '--json'])
    t.equal(task.code, 0, task.stderr)
    return JSON.parse(task.stdout)
  }
  const stat = async (p: string): Promise<string> => {
    const r = await tfs.sh(`stat -c '%a %u %g %Y %s %F' ${p}`)
    return r.code === 0 ? r.stdout.trim() : r.stderr.trim()
  }

  await t.test('the import lists; stat shows what each object carries, read when it is looked up', async (t) => {
    const deep = randomBytes(10_000)
    await put('p/meta.txt', 'with metadata\n', META)
    await put('p/link', 'meta.txt', SYMLINK)
    await put('p/plain.txt', 'no metadata\n')
    await put('p/sub/deep.bin', deep, META)
    const task = await importDir('p', true)
    t.match(task, { Lifecycle: 'SUCCEEDED', Status: { TotalCount: 4, SucceededCount: 4, FailedCount: 0 } }, 'imported while every HEAD fails')

    t.equal((await tfs.sh('ls p p/sub')).stdout, 'p:\nlink\nmeta.txt\nplain.txt\nsub\n\np/sub:\ndeep.bin\n', 'every name is there at once')
    const headsBefore = proxy.counts.error
    t.match(await stat('p/meta.txt'), /Input\/output error/, 'S3 cannot say what the entry is: EIO, not a guess')
    t.ok(proxy.counts.error > headsBefore, 'the lookup asked S3')

    proxy.mode = 'pass'
    t.equal(await stat('p/meta.txt'), '640 1234 5678 1595002920 14 regular file', 'mode, owner, group and mtime from the object')
    t.equal(await stat('p/link'), '777 1234 5678 ' + String(await lastModified('p/link')) + ' 8 symbolic link', 'a symlink object is a symlink')
    t.equal((await tfs.sh('readlink p/link; cat p/link')).stdout, 'meta.txt\nwith metadata\n')
    t.equal(await stat('p/plain.txt'), `755 0 0 ${await lastModified('p/plain.txt')} 12 regular file`, "FSx's defaults without metadata")
    t.equal(await stat('p/sub/deep.bin'), '640 1234 5678 1595002920 10000 regular file')
    t.equal((await tfs.sh('sha256sum < p/sub/deep.bin')).stdout.split(' ')[0], sha(deep), 'the content loads as before')
    t.equal((await tfs.sh('find p -type l')).stdout, 'p/link\n', 'find sees the symlink')
  })

  await t.test('what a restart finds unsettled is settled in the background; then no lookup needs S3', async (t) => {
    await put('q/a.txt', 'a\n', META)
    await put('q/l', 'a.txt', SYMLINK)
    await importDir('q', true)
    t.equal(await tfs.stop(), 0)
    proxy.mode = 'pass'
    await tfs.mount()
    await until('the daemon settled them', async () => /imported objects settled/.test(tfs.readLog()), 20_000)
    proxy.faulty = undefined
    proxy.mode = 'error' // S3 answers nothing any more
    t.equal(await stat('q/a.txt'), '640 1234 5678 1595002920 2 regular file')
    t.equal((await tfs.sh('readlink q/l')).stdout, 'a.txt\n')
    proxy.mode = 'pass'
  })

  await t.test('an object replaced or deleted between the listing and its HEAD', async (t) => {
    await put('r/changed.txt', 'v1\n')
    await put('r/gone.txt', 'gone\n')
    await importDir('r', true)
    await put('r/changed.txt', 'version two\n', { ...META, 'file-permissions': '0100600' })
    await c.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'r/gone.txt' }))
    proxy.mode = 'pass'
    t.equal(await stat('r/changed.txt'), '600 1234 5678 1595002920 12 regular file', 'the object as it is now')
    t.equal((await tfs.sh('cat r/changed.txt')).stdout, 'version two\n')
    t.match(await stat('r/gone.txt'), /^755 0 0 \d+ 5 regular file$/, 'a vanished object leaves the listing\'s entry')
    t.match((await tfs.cli(['hsm', 'state', tfs.p('r/gone.txt')])).stdout, /released exists archived lost_from_hsm/, 'and says it is lost')
    t.match((await tfs.sh('cat r/gone.txt')).stderr, /Input\/output error/)
  })

  await t.test('a second import of a changed object updates an entry already settled', async (t) => {
    await put('s/x.txt', 'one\n', META)
    await importDir('s', false)
    t.equal(await stat('s/x.txt'), '640 1234 5678 1595002920 4 regular file')
    await put('s/x.txt', 'second version\n', { ...META, 'file-permissions': '0100600', 'file-owner': '42' })
    const again = await tfs.cli(['task', 'import', `s3://${BUCKET}/s/`, '--wait', '--json'])
    t.equal(again.code, 0, again.stderr)
    t.match(JSON.parse(again.stdout), { Lifecycle: 'SUCCEEDED', Status: { TotalCount: 1, SucceededCount: 1 } })
    t.equal(await stat('s/x.txt'), '600 42 5678 1595002920 15 regular file')
    t.equal((await tfs.sh('cat s/x.txt')).stdout, 'second version\n')
  })

  await t.test("a renamed directory's unsettled files keep their objects' metadata under the new keys", async (t) => {
    await put('u/sub/a.txt', 'a\n', META)
    await importDir('u', true, ['--export', 'NEW,CHANGED,DELETED'])
    t.equal((await tfs.sh('mv u/sub u/moved')).code, 0) // no lookup of a.txt: it stays unsettled
    proxy.mode = 'pass' // the export could not read its metadata so far: it retries
    let meta: Record<string, string> | undefined
    await until('u/moved/a.txt is in S3', async () => {
      meta = (await c.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'u/moved/a.txt' })).catch(() => undefined))?.Metadata
      return meta !== undefined
    })
    t.match(meta, { 'file-permissions': '0100640', 'file-owner': '1234', 'file-group': '5678' })
  })

  await t.test("automatic import's listing creates new files without a HEAD too", async (t) => {
    await put('w/a.txt', 'a\n', META)
    proxy.faulty = heads
    proxy.mode = 'error'
    const made = await tfs.cli(['dra', 'create', '/w', `s3://${BUCKET}/w/`, '--import', 'NEW,CHANGED,DELETED', '--wait'])
    t.equal(made.code, 0, made.stderr)
    await untilEqual('the automatic import made w/a.txt', async () => (await tfs.sh('ls w')).stdout, 'a.txt\n')
    t.match(await stat('w/a.txt'), /Input\/output error/)
    proxy.mode = 'pass'
    t.equal(await stat('w/a.txt'), '640 1234 5678 1595002920 2 regular file')
  })

  await t.test('a stop does not wait for the HEADs a silent server holds', async (t) => {
    await put('v/a.txt', 'a\n', META)
    proxy.faulty = heads
    proxy.mode = 'hang'
    const made = await tfs.cli(['dra', 'create', '/v', `s3://${BUCKET}/v/`, '--wait'])
    t.equal(made.code, 0, made.stderr)
    t.equal((await tfs.cli(['task', 'import', `s3://${BUCKET}/v/`, '--wait'])).code, 0)
    await until('the background asked S3', async () => proxy.counts.hang > 0)
    const start = Date.now()
    t.equal(await tfs.stop(), 0, 'a clean stop')
    t.ok(Date.now() - start < 10_000, `stopped in ${Date.now() - start} ms, not after the S3 idle timeout`)
    proxy.mode = 'pass'
  })
})
