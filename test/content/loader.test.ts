// Lazy loading against the real embedded S3 server: ranges, sharing, failure and retry, deadline,
// a reader answered from a partial body.
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import http from 'node:http'
import net from 'node:net'
import { createHash, randomBytes } from 'node:crypto'
import { S3Client, PutObjectCommand } from '@aws-sdk/client-s3'
import { startS3 } from '../fixtures/harness'
import { ContentStore } from '../../src/content/content'
import { ContentLoader, type RangeFetch } from '../../src/content/loader'
import { getObjectRange } from '../../src/repo/objects'
import type { Inode } from '../../src/namespace/inode'

const BUCKET = 'loader-test'
const client = (endpoint: string): S3Client => new S3Client({
  endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED'
})

async function setup (t: Tap.Test, size: number) {
  const s3 = await startS3(t, [BUCKET])
  const c = client(s3.endpoint)
  t.teardown(() => c.destroy())
  const body = randomBytes(size)
  const put = await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'obj', Body: body }))
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 's3link-loader-'))
  t.teardown(() => fs.promises.rm(dir, { recursive: true, force: true }))
  const content = await ContentStore.create(dir)
  const inode = { ino: 7, size, remote: { dra: 'dra-x', bucket: BUCKET, key: 'obj', etag: put.ETag ?? '', size, modified: 0 } } as unknown as Inode
  return { s3, c, body, content, inode }
}

const fetcherOn = (c: S3Client, calls: { n: number }) => async (inode: Inode): Promise<RangeFetch> => {
  calls.n++
  const r = inode.remote!
  return async (start, end, signal) => await getObjectRange(c, r.bucket, r.key, r.etag, start, end === undefined ? undefined : end - 1, signal)
}

async function readBack (content: ContentStore, ino: number, offset: number, length: number, size: number): Promise<Buffer> {
  const fd = await content.acquire(ino)
  try {
    const buf = Buffer.alloc(length)
    await content.read(fd, buf, offset, size)
    return buf
  } finally { await content.release(ino) }
}

t.test('a read far into a released file gets its bytes; the whole file loads once, shared by all readers', async (t) => {
  const size = 48 << 20
  const { c, body, content, inode } = await setup(t, size)
  const calls = { n: 0 }
  const loaded: string[] = []
  const loader = new ContentLoader(content, { fetcherFor: fetcherOn(c, calls), onLoaded: async (_ino, etag) => { loaded.push(etag) }, deadlineMs: 30_000, aheadBytes: 1 << 20 })
  const far = size - (3 << 20)
  await Promise.all([loader.ensure(inode, far, 65536), loader.ensure(inode, 0, 4096), loader.ensure(inode, far + 100, 4096)])
  t.same(await readBack(content, 7, far, 65536, size), body.subarray(far, far + 65536), 'the bytes read far ahead are the object\'s')
  t.same(await readBack(content, 7, 0, 4096, size), body.subarray(0, 4096))
  await loader.ensureAll(inode)
  t.equal(calls.n, 1, 'three readers, one load')
  const file = await fs.promises.readFile(content.pathOf(7))
  t.equal(createHash('sha256').update(file).digest('hex'), createHash('sha256').update(body).digest('hex'), 'the content file is the object')
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.same(loaded, [inode.remote!.etag], 'loaded once, reported with the ETag it was loaded from')
  await loader.close()
})

t.test('an unreachable server gives EIO; the next read tries again and succeeds', async (t) => {
  const { s3, body, content, inode } = await setup(t, 100_000)
  let endpoint = 'http://127.0.0.1:9'
  const errors: unknown[] = []
  const clients: S3Client[] = []
  const loader = new ContentLoader(content, {
    fetcherFor: async (i) => {
      const c = client(endpoint)
      clients.push(c)
      return await fetcherOn(c, { n: 0 })(i)
    },
    onLoaded: async () => {},
    onError: (_ino, err) => errors.push(err),
    deadlineMs: 20_000
  })
  t.teardown(() => { for (const c of clients) c.destroy() })
  await t.rejects(loader.ensure(inode, 0, 4096), { code: 'EIO' }, 'the reader gets EIO')
  t.equal(errors.length, 1, 'the failure is reported')
  endpoint = s3.endpoint
  await loader.ensure(inode, 0, 4096)
  t.same(await readBack(content, 7, 0, 4096, 100_000), body.subarray(0, 4096), 'the retry loads the bytes')
  await loader.close()
})

t.test('an object changed since import fails the load instead of mixing versions', async (t) => {
  const { c, content, inode } = await setup(t, 10_000)
  await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'obj', Body: randomBytes(10_000) }))
  const loader = new ContentLoader(content, { fetcherFor: fetcherOn(c, { n: 0 }), onLoaded: async () => {}, deadlineMs: 20_000 })
  await t.rejects(loader.ensure(inode, 0, 100), { code: 'EIO' })
  await loader.close()
})

/** A server whose GETs send `sent` bytes of a `size`-byte object, then nothing more, ever. */
async function stallingServer (t: Tap.Test, size: number, sent: Buffer): Promise<string> {
  const sockets: net.Socket[] = []
  const server = http.createServer((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-length': String(size), etag: '"stall"', 'last-modified': new Date().toUTCString() })
    res.write(sent)
  })
  server.on('connection', (s) => sockets.push(s))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const s of sockets) s.destroy(); server.close() })
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`
}

t.test('a read returns once its own range is in, before the rest of the object (or a full write batch) arrives', async (t) => {
  const { content, inode } = await setup(t, 1000)
  const size = 64 << 20
  const sent = randomBytes(100_000)
  const c = client(await stallingServer(t, size, sent))
  t.teardown(() => c.destroy())
  const released = { ...inode, ino: 8, size, remote: { ...inode.remote!, key: 'stall', etag: '"stall"', size } } as unknown as Inode
  const loader = new ContentLoader(content, { fetcherFor: fetcherOn(c, { n: 0 }), onLoaded: async () => {}, deadlineMs: 3000 })
  const started = Date.now()
  await loader.ensure(released, 0, 4096)
  await new Promise((resolve) => setTimeout(resolve, 200)) // the rest of what was sent arrives
  // Bytes that arrived while nobody waited for them: held for a bigger write until someone does.
  await loader.ensure(released, 70_000, 20_000)
  t.ok(Date.now() - started < 2500, 'both answered before the deadline')
  t.same(await readBack(content, 8, 0, 90_000, size), sent.subarray(0, 90_000), 'the bytes the server sent')
  await t.rejects(loader.ensure(released, 200_000, 4096), { code: 'EIO' }, 'bytes that never come: EIO at the deadline')
  await loader.close()
})

t.test('a server that never answers: the reader gets EIO at the deadline, not a hang', async (t) => {
  const { content, inode } = await setup(t, 10_000)
  const sockets: net.Socket[] = []
  const silent = net.createServer((s) => { sockets.push(s) })
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const s of sockets) s.destroy(); silent.close() })
  const c = client(`http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`)
  t.teardown(() => c.destroy())
  const loader = new ContentLoader(content, { fetcherFor: fetcherOn(c, { n: 0 }), onLoaded: async () => {}, deadlineMs: 1500 })
  const started = Date.now()
  await t.rejects(loader.ensure(inode, 0, 100), { code: 'EIO' })
  t.ok(Date.now() - started < 5000, 'answered within the deadline')
  await loader.close()
})
