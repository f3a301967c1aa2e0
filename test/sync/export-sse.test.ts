// Export encryption follows the bucket table: `--sse AES256` and `--sse aws:kms --kms-key-id K` put
// the SSE headers on every write export makes (PUT, multipart create, server-side copy); `none`
// sends none, leaving it to the bucket's default encryption. What the client sent is read from a
// proxy in front of the embedded S3 server (s3rver ignores SSE).
import t from 'tap'
import { startFs, startS3 } from '../fixtures/harness'
import { startFaultProxy } from '../fixtures/fault-proxy'
import { aws } from '../fixtures/aws'
import { until } from '../fixtures/until'

const BUCKET = 'sealed'

const cases: Array<[string, string[], Record<string, string | undefined>]> = [
  ['AES256', ['--sse', 'AES256'], { 'x-amz-server-side-encryption': 'AES256', 'x-amz-server-side-encryption-aws-kms-key-id': undefined }],
  ['aws:kms', ['--sse', 'aws:kms', '--kms-key-id', 'alias/s3link-test'], { 'x-amz-server-side-encryption': 'aws:kms', 'x-amz-server-side-encryption-aws-kms-key-id': 'alias/s3link-test' }],
  ['none', ['--sse', 'none'], { 'x-amz-server-side-encryption': undefined, 'x-amz-server-side-encryption-aws-kms-key-id': undefined }]
]

for (const [name, flags, want] of cases) {
  t.test(`--sse ${name}: every export write carries the bucket's encryption`, async (t) => {
    const s3 = await startS3(t, [BUCKET])
    const proxy = await startFaultProxy(t, s3.port)
    const tfs = await startFs(t, { config: { importIntervalMs: 3_600_000 } })
    t.equal((await tfs.cli(['bucket', 'add', BUCKET, '--cloud', 'other', '--endpoint', proxy.endpoint, '--access-key-id', 'S3RVER', '--secret-access-key', 'S3RVER', ...flags])).code, 0)
    const id = JSON.parse((await tfs.cli(['status', tfs.name, '--json'])).stdout).id
    const created = await aws(tfs, ['fsx', 'create-data-repository-association', '--file-system-id', id, '--file-system-path', '/e', '--data-repository-path', `s3://${BUCKET}/e/`,
      '--s3', 'AutoExportPolicy={Events=[NEW,CHANGED,DELETED]}'])
    t.equal(created.code, 0, created.stderr)
    await until('the DRA is AVAILABLE', async () => (await aws(tfs, ['fsx', 'describe-data-repository-associations'])).json?.Associations[0].Lifecycle === 'AVAILABLE')

    t.equal((await tfs.sh('echo small > e/small && head -c 20971520 /dev/urandom > e/big && mkdir e/dir')).code, 0)
    const writes = (): typeof proxy.requests => proxy.requests.filter((r) => r.method === 'PUT' || (r.method === 'POST' && r.url.includes('uploads')))
    const sent = (path: string, method = 'PUT'): typeof proxy.requests => writes().filter((r) => r.method === method && r.url.split('?')[0] === `/${BUCKET}/${path}`)
    await until('small, big and the directory marker are exported', async () =>
      sent('e/small').length > 0 && sent('e/dir/').length > 0 && writes().some((r) => r.method === 'POST' && r.url.startsWith(`/${BUCKET}/e/big?uploads`)))
    await until('the multipart upload is complete', async () => proxy.requests.some((r) => r.method === 'POST' && r.url.startsWith(`/${BUCKET}/e/big?uploadId`)))
    t.equal((await tfs.sh('chmod 600 e/small')).code, 0)
    await until('the chmod is exported as a copy', async () => sent('e/small').some((r) => r.headers['x-amz-copy-source'] !== undefined))

    const initiating = writes().filter((r) => !(r.method === 'PUT' && r.url.includes('partNumber=')))
    t.ok(initiating.length >= 4, `PUT small, PUT marker, POST create multipart, PUT copy (${initiating.length} requests)`)
    for (const r of initiating) {
      for (const [header, value] of Object.entries(want)) t.equal(r.headers[header], value, `${r.method} ${r.url.split('?')[0]}: ${header}`)
    }
  })
}
