/**
 * Export's S3 writes through the transfer worker (src/repo/transfers.ts), against the embedded S3
 * server: results and errors as the in-thread calls gave them (the exporter classifies errors by
 * name and HTTP status), cancellation, a worker that dies (its requests fail retryably, the next
 * request gets a new worker), close.
 *
 * Runs the compiled worker: build first (`npx tsc -p tsconfig.json`; `make test` does).
 */
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { startS3, REPO } from '../fixtures/harness'
import { applyForm } from '../../src/repo/bucket-entry'
import { describeS3Error } from '../../src/repo/objects'
import { type Target, Transfers } from '../../src/repo/transfers'
import type { Worker } from 'node:worker_threads'

const BUCKET = 'xfer'
const SCRIPT = path.join(REPO, 'dist/repo/transfer-worker.js')
const log = { error: () => undefined } as unknown as ConstructorParameters<typeof Transfers>[0]

function target (endpoint: string, bucket = BUCKET, secret = 'S3RVER'): Target {
  const entry = applyForm(undefined, { op: 'add', bucketname: bucket, cloud: 'other', endpoint, accessKeyId: 'S3RVER', secretAccessKey: secret })
  const client = new S3Client({
    endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: secret },
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED'
  })
  return { client, bucket, entry }
}

/** A TCP server that accepts and never answers: requests to it hang until cancelled. */
async function silentServer (t: Test): Promise<string> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((s) => { sockets.add(s); s.on('error', () => undefined) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const s of sockets) s.destroy(); server.close() })
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`
}

t.test('writes, copies, deletes and errors as the in-thread calls', async (t) => {
  const s3 = await startS3(t, [BUCKET])
  const transfers = new Transfers(log, {}, SCRIPT)
  t.teardown(async () => { await transfers.close() })
  const tg = target(s3.endpoint)
  t.teardown(() => tg.client.destroy())
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 's3link-xfer-'))
  t.teardown(async () => { await fs.promises.rm(dir, { recursive: true, force: true }) })
  const file = path.join(dir, 'content')
  await fs.promises.writeFile(file, 'hello world, and more')

  const put = await transfers.putFile(tg, 'a/file', file, 11, { 'file-permissions': '0100644' })
  const head = await tg.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'a/file' }))
  t.equal(put.etag, head.ETag, 'putFile answers the ETag')
  t.equal(head.ContentLength, 11, 'only `size` bytes are sent')
  t.same(head.Metadata, { 'file-permissions': '0100644' })
  await transfers.putFile(tg, 'a/short', file, 100, {})
  t.equal((await tg.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'a/short' }))).ContentLength, 21, 'a file shorter than announced (truncated meanwhile) is sent as it is, not waited for')
  t.equal((await transfers.putText(tg, 'a/link', 'target', {})).etag !== '', true, 'putText')
  const body = await (await tg.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'a/link' }))).Body!.transformToString()
  t.equal(body, 'target')
  const copied = await transfers.copyWithMetadata(tg, 'a/file', 'b/file', { 'file-permissions': '0100600' })
  t.equal(copied.etag, head.ETag, 'a copy has the same content')
  t.same((await tg.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'b/file' }))).Metadata, { 'file-permissions': '0100600' })
  await transfers.deleteKeys(tg, ['a/file', 'a/file/', 'never/was'])
  await t.rejects(tg.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'a/file' })), { name: 'NotFound' }, 'deleted')

  const missing = target(s3.endpoint, 'nosuchbucket')
  t.teardown(() => missing.client.destroy())
  const err = await transfers.putText(missing, 'k', 'x', {}).then(() => undefined, (e: unknown) => e)
  t.match(err, { name: 'NoSuchBucket', $metadata: { httpStatusCode: 404 } }, 'the error keeps its name and status')
  t.equal(describeS3Error(err), 'NoSuchBucket (HTTP 404)')
  t.ok(err instanceof Error)

  // A server that records the request and denies it: the worker signs with the target client's
  // credentials (session token included), and the denial comes back as S3 gives it.
  let seen: http.IncomingHttpHeaders = {}
  const denier = http.createServer((req, res) => {
    seen = req.headers
    req.resume()
    res.writeHead(403, { 'content-type': 'application/xml' }).end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>')
  })
  await new Promise<void>((resolve) => denier.listen(0, '127.0.0.1', resolve))
  t.teardown(() => denier.close())
  const deniedAt = `http://127.0.0.1:${(denier.address() as net.AddressInfo).port}`
  const wrong = target(deniedAt)
  wrong.client.destroy()
  wrong.client = new S3Client({ endpoint: deniedAt, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'very-secret', sessionToken: 'TOKEN' } })
  t.teardown(() => wrong.client.destroy())
  const denied = await transfers.putText(wrong, 'k', 'x', {}).then(() => undefined, (e: unknown) => e) as Error
  t.match(denied, { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }, 'a denial is AccessDenied, HTTP 403')
  t.match(seen.authorization, /Credential=AKIDTEST\//, 'signed with the target client\'s key')
  t.equal(seen['x-amz-security-token'], 'TOKEN', 'and its session token')
  t.notMatch(JSON.stringify({ ...denied, message: denied.message }), /very-secret/, 'no secret in the error')
})

t.test('cancel, a dying worker, close', async (t) => {
  const endpoint = await silentServer(t)
  const transfers = new Transfers(log, {}, SCRIPT)
  const tg = target(endpoint)
  t.teardown(() => tg.client.destroy())

  const abort = new AbortController()
  const cancelled = transfers.putText(tg, 'k', 'x', {}, abort.signal)
  setTimeout(() => abort.abort(), 200)
  await t.rejects(cancelled, { name: 'AbortError' }, 'an aborted request fails')

  const hanging = transfers.putText(tg, 'k', 'x', {})
  await new Promise((resolve) => setTimeout(resolve, 200))
  const worker = (transfers as unknown as { worker: Worker }).worker
  await worker.terminate()
  const died = await hanging.then(() => undefined, (e: unknown) => e)
  t.match(died, { name: 'TransferWorkerExited' }, 'a request in a dying worker fails')
  t.equal((died as { $metadata?: unknown }).$metadata, undefined, 'without an HTTP status: the exporter retries it')

  const again = transfers.putText(tg, 'k', 'x', {})
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.not((transfers as unknown as { worker: Worker }).worker, worker, 'the next request has a new worker')
  await transfers.close()
  await t.rejects(again, { name: 'TransferWorkerExited' }, 'close ends what runs')
  await t.rejects(transfers.putText(tg, 'k', 'x', {}), { name: 'TransferWorkerExited' }, 'and what comes after')
  await transfers.close()
  t.pass('close is idempotent')
})
