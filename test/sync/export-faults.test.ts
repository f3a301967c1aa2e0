// Export when S3 misbehaves, through a fault-injecting proxy in front of the embedded S3 server:
// 500s and dropped connections delay exports and lose nothing; access denied makes the DRA
// MISCONFIGURED instead of being retried in a loop, and exports resume when it is usable again;
// a server that stops answering holds an export no longer than s3IdleTimeoutMs.
import t from 'tap'
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import { startFs, startS3 } from '../fixtures/harness'
import { startFaultProxy } from '../fixtures/fault-proxy'
import { aws } from '../fixtures/aws'
import { until } from '../fixtures/until'
import { s3Client } from '../fixtures/s3'

const BUCKET = 'faulty'

t.test('exports survive S3 errors and outages, and access denied is recorded, not looped', async (t) => {
  const s3 = await startS3(t, [BUCKET])
  const proxy = await startFaultProxy(t, s3.port)
  const direct = s3Client(t, s3.endpoint)
  const keys = async (): Promise<string[]> => ((await direct.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'f/' }))).Contents ?? []).map((o) => o.Key ?? '').sort()
  const body = async (key: string): Promise<string> => await (await direct.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body!.transformToString()

  const tfs = await startFs(t, { config: { importIntervalMs: 3_600_000, draCheckIntervalMs: 1000 } })
  t.equal((await tfs.addBucket(BUCKET, proxy.endpoint)).code, 0)
  const id = JSON.parse((await tfs.cli(['status', tfs.name, '--json'])).stdout).id
  const created = await aws(tfs, ['fsx', 'create-data-repository-association', '--file-system-id', id, '--file-system-path', '/f', '--data-repository-path', `s3://${BUCKET}/f/`,
    '--s3', 'AutoExportPolicy={Events=[NEW,CHANGED,DELETED]}'])
  t.equal(created.code, 0, created.stderr)
  const lifecycle = async (): Promise<string> => (await aws(tfs, ['fsx', 'describe-data-repository-associations'])).json?.Associations[0].Lifecycle
  await until('AVAILABLE', async () => await lifecycle() === 'AVAILABLE')

  proxy.mode = 'error'
  t.equal((await tfs.sh('for i in 1 2 3 4 5; do echo "v$i" > f/e$i; done')).code, 0)
  await until('the exports have been tried', async () => proxy.counts.error >= 5)
  proxy.mode = 'drop'
  await until('and tried again against a dropped connection', async () => proxy.counts.drop >= 1)
  t.same(await keys(), [], 'nothing reached S3 while it failed')
  const st = JSON.parse((await tfs.cli(['status', tfs.name, '--json'])).stdout)
  t.equal(st.queues.export.queued, 5, 'status: five paths wait for export')
  t.ok(st.queues.export.failures >= 5 && st.queues.export.bytesPending === 15 && st.queues.export.oldestAgeSeconds > 0, 'status: failures, bytes pending and age')
  t.match((await tfs.cli(['status', tfs.name])).stdout, /export: 5 queued, oldest \d+ s, 0\.0 MiB pending, \d+ failures/)
  proxy.mode = 'pass'
  await until('everything is exported once S3 is back', async () => (await keys()).length === 5)
  t.equal(await body('f/e3'), 'v3\n')
  await until('status shows an empty queue', async () => JSON.parse((await tfs.cli(['status', tfs.name, '--json'])).stdout).queues.export.queued === 0)
  t.match(tfs.readLog(), /"event":"S3Error"/, 'failures are logged with the FSx event code')

  proxy.mode = 'deny'
  t.equal((await tfs.sh('echo denied > f/d1')).code, 0)
  await until('the DRA is MISCONFIGURED', async () => await lifecycle() === 'MISCONFIGURED')
  const describe = await aws(tfs, ['fsx', 'describe-data-repository-associations'])
  t.match(describe.json.Associations[0].FailureDetails.Message, /AccessDenied|403/, 'the failure says why')
  const denials = proxy.counts.deny
  await new Promise((resolve) => setTimeout(resolve, 2500))
  t.ok(proxy.counts.deny - denials < 20, `not retried in a loop (${proxy.counts.deny - denials} requests in 2.5 s)`)
  t.match((await tfs.sh('getfattr --only-values -n user.s3link.hsm_state f/d1')).stdout, /\(0x00000000\)/, 'the file is still not archived')
  proxy.mode = 'pass'
  await until('AVAILABLE again (health check)', async () => await lifecycle() === 'AVAILABLE')
  await until('the waiting export goes through', async () => (await keys()).includes('f/d1'))
  t.equal(await body('f/d1'), 'denied\n')
})

t.test('a request S3 never answers fails after s3IdleTimeoutMs; the export is tried again', async (t) => {
  const s3 = await startS3(t, [BUCKET])
  const proxy = await startFaultProxy(t, s3.port)
  const direct = s3Client(t, s3.endpoint)
  const tfs = await startFs(t, { config: { importIntervalMs: 3_600_000, draCheckIntervalMs: 60_000, s3IdleTimeoutMs: 1500 } })
  t.equal((await tfs.addBucket(BUCKET, proxy.endpoint)).code, 0)
  t.equal((await tfs.cli(['dra', 'create', '/h', `s3://${BUCKET}/h/`, '--export', 'NEW,CHANGED,DELETED', '--wait'])).code, 0)
  proxy.mode = 'hang'
  t.equal((await tfs.sh('echo held > h/f')).code, 0)
  await until('the upload went out and got no answer', async () => proxy.counts.hang >= 1)
  proxy.mode = 'pass'
  const body = async (): Promise<string> => await (await direct.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'h/f' }))).Body!.transformToString()
  await until('the file is in S3 once the server answers again', async () => await body().catch(() => '') === 'held\n', 20_000)
})
