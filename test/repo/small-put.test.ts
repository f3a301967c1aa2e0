/**
 * Small PUTs past the SDK's middleware (src/repo/small-put.ts), against the embedded S3 server
 * behind a recording proxy: one request per object, validly signed (checked here: s3rver does not
 * check V4 signatures), with the headers the SDK sends for the same PutObject (checksum included
 * when the client's checksums are WHEN_SUPPORTED), keys that need encoding, and every failure
 * handed back to the SDK (uploads.ts), whose errors the exporter knows, and which then has the
 * bucket's PUTs for a while.
 */
import type http from 'node:http'
import t from 'tap'
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { startFaultProxy } from '../fixtures/fault-proxy'
import { startS3 } from '../fixtures/harness'
import { parseAmzDate, parseSigV4, verifySigV4 } from '../../src/api/sigv4'
import { putSmall, type SmallPut } from '../../src/repo/small-put'
import { putText } from '../../src/repo/uploads'

const BUCKET = 'smallput'
const KEYS = ['plain/file', 'a b/c+d/é?#%&=;.txt', "x/(quotes)!'*~@$,", 'deep/er/still/ünïcödé ✓']
const METADATA = { 'file-permissions': '0100644', 'file-owner': '1000', 'file-mtime': '1700000000123456789ns' }

function client (endpoint: string, checksums: 'WHEN_REQUIRED' | 'WHEN_SUPPORTED'): S3Client {
  return new S3Client({
    endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', sessionToken: 'session-token' },
    requestChecksumCalculation: checksums, responseChecksumValidation: 'WHEN_REQUIRED'
  })
}

/** Checks a recorded request's SigV4 signature (the embedded server does not: s3rver skips V4). */
async function signedWell (req: { method: string, url: string, headers: http.IncomingHttpHeaders }, body: Buffer): Promise<boolean> {
  const auth = parseSigV4(String(req.headers.authorization))
  return await verifySigV4({ ...req, body }, auth, parseAmzDate(String(req.headers['x-amz-date']))!, 'S3RVER').then(() => true, () => false)
}

/** Headers both send; the SDK's own (user agent, invocation id, date, signature) aside. */
function comparable (h: http.IncomingHttpHeaders): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(h)) if (!/^(authorization|x-amz-date|user-agent|x-amz-user-agent|amz-sdk-.*|connection|host)$/.test(k)) out[k] = v
  return out
}

for (const checksums of ['WHEN_REQUIRED', 'WHEN_SUPPORTED'] as const) {
  t.test(`one request per object, as the SDK sends it (checksums ${checksums})`, async (t) => {
    const s3 = await startS3(t, [BUCKET])
    const proxy = await startFaultProxy(t, s3.port)
    const c = client(proxy.endpoint, checksums)
    t.teardown(() => c.destroy())
    const direct = client(s3.endpoint, 'WHEN_REQUIRED')
    t.teardown(() => direct.destroy())
    const headers = { 'x-amz-server-side-encryption': 'AES256' }
    for (const key of KEYS) {
      const body = Buffer.from(`bytes of ${key}`)
      const before = proxy.requests.length
      const etag = await putSmall({ client: c, bucket: BUCKET, key, body, metadata: METADATA, headers })
      t.ok(etag?.startsWith('"'), `${key}: answered with the ETag`)
      t.equal(proxy.requests.length - before, 1, `${key}: in one request`)
      const got = await direct.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))
      t.equal(await got.Body!.transformToString(), body.toString(), `${key}: the bytes, under that very key`)
      t.same(got.Metadata, METADATA, `${key}: the metadata`)
      t.equal(got.ETag, etag)
      const ours = proxy.requests[proxy.requests.length - 1]

      await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, ContentLength: body.length, Metadata: METADATA, ServerSideEncryption: 'AES256' }))
      const sdk = proxy.requests[proxy.requests.length - 1]
      t.same(comparable(ours.headers), comparable(sdk.headers), `${key}: the SDK's headers`)
      t.equal(ours.url, sdk.url.replace(/\?x-id=PutObject$/, ''), `${key}: the SDK's path`)
      t.equal(ours.headers['x-amz-security-token'], 'session-token', `${key}: the session token is sent`)
      t.ok(await signedWell(ours, body), `${key}: its signature is valid`)
      t.ok(await signedWell(sdk, body), `${key}: as is the SDK's (the check is sound)`)
    }
    const sent = proxy.requests[proxy.requests.length - 1].headers
    t.equal(sent['x-amz-checksum-crc32'] !== undefined, checksums === 'WHEN_SUPPORTED', 'a CRC32 exactly when checksums are WHEN_SUPPORTED')
  })
}

t.test('a failure is left to the SDK, whose error the exporter classifies; the bucket then goes to the SDK for a while', async (t) => {
  const s3 = await startS3(t, [BUCKET])
  const proxy = await startFaultProxy(t, s3.port)
  const fresh = (): S3Client => {
    const c = client(proxy.endpoint, 'WHEN_REQUIRED')
    t.teardown(() => c.destroy())
    return c
  }
  const put = (c: S3Client): SmallPut => ({ client: c, bucket: BUCKET, key: 'k', body: Buffer.from('x'), metadata: {}, headers: {} })
  /** Whether the last request the proxy saw was the SDK's own (it numbers its invocations). */
  const bySdk = (): boolean => proxy.requests[proxy.requests.length - 1].headers['amz-sdk-invocation-id'] !== undefined

  proxy.mode = 'deny'
  const c = fresh()
  t.equal(await putSmall(put(c)), undefined, 'a denial: no answer of its own')
  let before = proxy.requests.length
  const err = await putText({ client: c, bucket: BUCKET }, 'k', 'x', {}).then(() => undefined, (e: unknown) => e)
  t.match(err, { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }, 'the SDK answers AccessDenied, HTTP 403')
  t.equal(proxy.requests.length - before, 1, 'after a failure, a PUT is the SDK\'s alone: the server is not asked twice')

  proxy.mode = 'pass'
  before = proxy.requests.length
  const written = await putText({ client: c, bucket: BUCKET }, 'k', 'after', {})
  t.equal(written.etag, (await c.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'k' }))).ETag, 'once S3 answers again, the PUT goes through')
  t.ok(bySdk(), 'through the SDK while the bucket is set aside')
  const other = fresh()
  await putText({ client: other, bucket: BUCKET }, 'k2', 'x', {})
  t.notOk(bySdk(), 'a bucket (client) that saw no failure sends its own')
  const missing = await putText({ client: fresh(), bucket: 'nosuchbucket' }, 'k', 'x', {}).then(() => undefined, (e: unknown) => e)
  t.match(missing, { name: 'NoSuchBucket', $metadata: { httpStatusCode: 404 } }, 'a missing bucket: NoSuchBucket, HTTP 404')

  proxy.mode = 'drop'
  t.equal(await putSmall(put(fresh())), undefined, 'a dropped connection: no answer of its own')

  const abort = new AbortController()
  proxy.mode = 'hang'
  const hung = putSmall(put(fresh()), abort.signal)
  setTimeout(() => abort.abort(), 200)
  await t.rejects(hung, 'an aborted PUT fails (it is not handed to the SDK)')
})
