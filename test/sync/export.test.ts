// Automatic export through the real mount to the embedded S3 server: what normal tools do in a
// linked directory reaches S3 as FSx writes it (bytes, POSIX metadata, markers, symlinks), renames
// and deletions included; nothing is lost to kill -9.
import t from 'tap'
import { createHash } from 'node:crypto'
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import { startFs, startS3, type TestFs } from '../fixtures/harness'
import { aws } from '../fixtures/aws'
import { until } from '../fixtures/until'
import { s3Client } from '../fixtures/s3'

const BUCKET = 'exported'

async function setup (t: Tap.Test, events = 'NEW,CHANGED,DELETED') {
  const s3 = await startS3(t, [BUCKET])
  const c = s3Client(t, s3.endpoint)
  const tfs = await startFs(t, { config: { importIntervalMs: 3_600_000, draCheckIntervalMs: 1000 } })
  t.equal((await tfs.addBucket(BUCKET, s3.endpoint)).code, 0)
  const id = JSON.parse((await tfs.cli(['status', tfs.name, '--json'])).stdout).id
  const created = await aws(tfs, ['fsx', 'create-data-repository-association', '--file-system-id', id, '--file-system-path', '/x', '--data-repository-path', `s3://${BUCKET}/out/`,
    '--s3', `AutoExportPolicy={Events=[${events}]}`])
  t.equal(created.code, 0, created.stderr)
  await until('the DRA is AVAILABLE', async () => (await aws(tfs, ['fsx', 'describe-data-repository-associations'])).json?.Associations[0].Lifecycle === 'AVAILABLE')
  const keys = async (): Promise<string[]> => ((await c.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'out/' }))).Contents ?? []).map((o) => o.Key ?? '').sort()
  const head = async (key: string): Promise<Record<string, string> | undefined> =>
    await c.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key })).then((h) => h.Metadata ?? {}, () => undefined)
  const body = async (key: string): Promise<Buffer> => Buffer.from(await (await c.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body!.transformToByteArray())
  return { tfs, keys, head, body }
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

t.test('files, directories, symlinks, chmod, renames and deletes reach S3 with FSx metadata', async (t) => {
  const { tfs, keys, head, body } = await setup(t)
  t.equal((await tfs.sh('mkdir -p x/d/e && printf "hello" > x/d/e/a.txt && ln -s d/e/a.txt x/link && chown 1000:100 x/d/e/a.txt && chmod 640 x/d/e/a.txt')).code, 0)
  await until('exported', async () => (await keys()).join(',') === 'out/d/,out/d/e/,out/d/e/a.txt,out/link' && (await head('out/d/e/a.txt'))?.['file-permissions'] === '0100640')
  t.equal((await body('out/d/e/a.txt')).toString(), 'hello')
  const meta = (await head('out/d/e/a.txt'))!
  t.match(meta, { 'file-permissions': '0100640', 'file-owner': '1000', 'file-group': '100', 'file-mtime': /^\d+ns$/, 'user-agent': 's3link' })
  t.equal((await tfs.sh('stat -c %Y x/d/e/a.txt')).stdout.trim(), String(BigInt(meta['file-mtime'].slice(0, -2)) / 1_000_000_000n), 'mtime in ns')
  t.match(await head('out/d/'), { 'file-permissions': '0040755' }, 'directory marker')
  t.equal((await body('out/link')).toString(), 'd/e/a.txt', 'a symlink\'s object holds its target')
  t.match(await head('out/link'), { 'file-permissions': '0120777' })
  await until('exists archived', async () => /\(0x00000009\) exists archived/.test((await tfs.sh('getfattr --only-values -n user.s3link.hsm_state x/d/e/a.txt')).stdout))

  t.equal((await tfs.sh('echo more >> x/d/e/a.txt')).code, 0)
  await until('the change is exported', async () => (await body('out/d/e/a.txt')).toString() === 'hellomore\n')
  await until('clean again', async () => /\(0x00000009\) exists archived/.test((await tfs.sh('getfattr --only-values -n user.s3link.hsm_state x/d/e/a.txt')).stdout))

  t.equal((await tfs.sh('mv x/d x/renamed')).code, 0)
  await until('the renamed tree is exported and the old keys are gone', async () =>
    (await keys()).join(',') === 'out/link,out/renamed/,out/renamed/e/,out/renamed/e/a.txt')
  t.equal((await body('out/renamed/e/a.txt')).toString(), 'hellomore\n', 'the renamed file keeps its bytes')
  t.match(await head('out/renamed/e/a.txt'), { 'file-permissions': '0100640', 'file-owner': '1000' })

  t.equal((await tfs.sh('rm -r x/renamed x/link')).code, 0)
  await until('deletions are exported', async () => (await keys()).length === 0)
})

t.test('a file still open through another descriptor is exported at its last close, not at the end of a backoff', async (t) => {
  const { tfs, keys } = await setup(t)
  // Closing fd 3 queues the export (FLUSH); fd 4, its duplicate, keeps the file open, so the export
  // is put off with a growing backoff: tries at about 0.1, 0.6, 1.6, 3.6 and 7.6 s, the next at 15.6.
  const writer = tfs.sh('exec 3> x/held.txt; echo held >&3; exec 4>&3; exec 3>&-; sleep 10; exec 4>&-')
  await new Promise((resolve) => setTimeout(resolve, 7000))
  t.notOk((await keys()).includes('out/held.txt'), 'not exported while it is open')
  t.equal((await writer).code, 0)
  const closed = Date.now()
  await until('exported after the last close', async () => (await keys()).includes('out/held.txt'), 30_000, 50)
  const after = Date.now() - closed
  t.ok(after < 3000, `exported ${after} ms after the last close (the backoff alone would wait about 5.6 s)`)
})

t.test('a large file goes up as a multipart upload with the right bytes; mtime-only changes export nothing', async (t) => {
  const { tfs, keys, body, head } = await setup(t)
  t.equal((await tfs.sh('head -c 25000000 /dev/urandom > /tmp/s3link-big.$$ && cp /tmp/s3link-big.$$ x/big.bin && rm /tmp/s3link-big.$$')).code, 0)
  await until('exported', async () => (await keys()).includes('out/big.bin'), 60_000)
  const local = (await tfs.sh('sha256sum x/big.bin')).stdout.split(' ')[0]
  t.equal(sha(await body('out/big.bin')), local, 'same bytes')
  const before = (await head('out/big.bin'))!['file-mtime']
  t.equal((await tfs.sh('touch -m -d 2001-01-01 x/big.bin')).code, 0)
  await new Promise((resolve) => setTimeout(resolve, 1500))
  t.equal((await head('out/big.bin'))!['file-mtime'], before, 'touch -m alone is not exported (as FSx)')
})

t.test('kill -9 right after closing files: every closed file is in S3 after the restart', async (t) => {
  const { tfs, keys, body } = await setup(t)
  t.equal((await tfs.sh('mkdir x/many && for i in $(seq 1 200); do echo "file $i" > x/many/f$i; done')).code, 0)
  await tfs.kill9()
  await tfs.mount()
  await until('all 200 are exported after the restart', async () => (await keys()).filter((k) => k.startsWith('out/many/f')).length === 200, 60_000)
  t.equal((await body('out/many/f137')).toString(), 'file 137\n')
})

t.test('a policy without DELETED keeps objects; without NEW new files stay local', async (t) => {
  const { tfs, keys } = await setup(t, 'NEW,CHANGED')
  t.equal((await tfs.sh('echo a > x/a && echo b > x/b')).code, 0)
  await until('exported', async () => (await keys()).length === 2)
  t.equal((await tfs.sh('rm x/a')).code, 0)
  await new Promise((resolve) => setTimeout(resolve, 1500))
  t.same(await keys(), ['out/a', 'out/b'], 'the object of a deleted file stays')
})

t.test('kill -9 during a multipart upload: the file is in S3, whole, after the restart', async (t) => {
  const { startProxy } = await import('../fixtures/proxy')
  const s3 = await startS3(t, ['midway'])
  const proxy = await startProxy(t, s3.port)
  const c = s3Client(t, s3.endpoint)
  const tfs = await startFs(t, { config: { importIntervalMs: 3_600_000 } })
  t.equal((await tfs.addBucket('midway', proxy.endpoint)).code, 0)
  t.equal((await tfs.cli(['dra', 'create', '/m', 's3://midway/m/', '--export', 'NEW,CHANGED,DELETED', '--wait'])).code, 0)
  const before = proxy.accepted // the DRA's bucket check went through the proxy too
  t.equal((await tfs.sh('head -c 30000000 /dev/urandom > m/big.bin')).code, 0)
  const local = (await tfs.sh('sha256sum m/big.bin')).stdout.split(' ')[0]
  // Let the upload start, then freeze S3 in the middle of it and kill the daemon.
  await until('the upload is under way', async () => proxy.accepted > before, 10_000)
  await new Promise((resolve) => setTimeout(resolve, 150))
  proxy.pause()
  await tfs.kill9()
  proxy.resume()
  await tfs.mount()
  await until('the object is complete after the restart', async () =>
    await c.send(new HeadObjectCommand({ Bucket: 'midway', Key: 'm/big.bin' })).then((h) => h.ContentLength === 30_000_000, () => false), 60_000)
  t.equal(sha(Buffer.from(await (await c.send(new GetObjectCommand({ Bucket: 'midway', Key: 'm/big.bin' }))).Body!.transformToByteArray())), local, 'with the bytes written')
})

t.test('a file changed while its upload is under way is exported again; /metrics counts exports, the queue and failures', async (t) => {
  const { startProxy } = await import('../fixtures/proxy')
  const s3 = await startS3(t, ['racing'])
  const proxy = await startProxy(t, s3.port)
  const c = s3Client(t, s3.endpoint)
  const tfs = await startFs(t, { config: { importIntervalMs: 3_600_000 } })
  t.equal((await tfs.addBucket('racing', proxy.endpoint)).code, 0)
  t.equal((await tfs.cli(['dra', 'create', '/r', 's3://racing/r/', '--export', 'NEW,CHANGED,DELETED', '--wait'])).code, 0)
  const metrics = async (): Promise<string> =>
    await (await fetch(tfs.apiUrl() + '/metrics', { headers: { authorization: `Bearer ${tfs.credentials().token}` } })).text()
  const value = (text: string, series: string): number => Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN)

  const before = proxy.accepted
  t.equal((await tfs.sh('head -c 20000000 /dev/urandom > r/big.bin')).code, 0)
  await until('the upload is under way', async () => proxy.accepted > before, 10_000)
  proxy.pause() // the first upload hangs halfway while the file changes
  t.equal((await tfs.sh('echo tail >> r/big.bin')).code, 0)
  const local = (await tfs.sh('sha256sum r/big.bin')).stdout.split(' ')[0]
  const held = await metrics()
  t.ok(value(held, 's3link_export_queue_depth') >= 1, 'the change waits in the queue')
  await new Promise((resolve) => setTimeout(resolve, 1100))
  t.ok(value(await metrics(), 's3link_export_oldest_queued_change_age_seconds') >= 1, 'and ages')
  proxy.resume()
  const object = async (): Promise<string> => sha(Buffer.from(await (await c.send(new GetObjectCommand({ Bucket: 'racing', Key: 'r/big.bin' }))).Body!.transformToByteArray()))
  await until('S3 holds the changed file', async () => await object().catch(() => '') === local, 60_000)
  await until('clean', async () => /\(0x00000009\) exists archived/.test((await tfs.sh('getfattr --only-values -n user.s3link.hsm_state r/big.bin')).stdout))
  await until('the queue is empty', async () => value(await metrics(), 's3link_export_queue_depth') === 0)
  const after = await metrics()
  t.equal(value(after, 's3link_export_oldest_queued_change_age_seconds'), 0, 'nothing ages in an empty queue')
  t.ok(value(after, 's3link_objects_exported_total{op="exported"}') >= 2, 'the first upload and the one after the change')
  t.ok(value(after, 's3link_bytes_exported_total') >= 20_000_005, 'the bytes of the last upload at least')

  const deep = ['d', 'e', 'f', 'g', 'h'].map((c) => c.repeat(250)).join('/') // its marker's key: 1,257 bytes
  t.equal((await tfs.sh(`mkdir -p r/${deep}`)).code, 0)
  await until('a key over 1,024 bytes is counted by its FSx code', async () => value(await metrics(), 's3link_export_failures_total{code="S3ExportPathSizeTooLong"}') >= 1)
})
