// A file whose object changes in S3 (or that is released) while someone reads it: the import releases it and drops its
// stale bytes, and a load started by a reader in the meantime must never be cut by that drop (the
// file would then read as zeros for good, marked loaded with an empty content file). Without a
// mount, against the embedded S3 server; the import is a batch long enough for a load to finish
// inside it, as one page of a listing is.
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { S3Client, PutObjectCommand } from '@aws-sdk/client-s3'
import { startS3 } from '../fixtures/harness'
import { Store } from '../../src/store/db'
import { Namespace } from '../../src/namespace/namespace'
import { ContentStore } from '../../src/content/content'
import { ContentLoader } from '../../src/content/loader'
import { FileSystem } from '../../src/fs/filesystem'
import { type ImportItem, importEntries } from '../../src/fs/import-entries'
import { getObjectRange } from '../../src/repo/objects'
import { isReleased } from '../../src/namespace/hsm'

const BUCKET = 'changing'
const OTHERS = 3000

t.test('a reader loading a file while an import drops its stale content reads the new object, then and later', async (t) => {
  const s3 = await startS3(t, [BUCKET])
  const c = new S3Client({
    endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED'
  })
  t.teardown(() => c.destroy())
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 's3link-changed-'))
  t.teardown(() => fs.promises.rm(dir, { recursive: true, force: true }))
  const store = await Store.open(path.join(dir, 'db'))
  const ns = await Namespace.open(store, { uid: 0, gid: 0, mode: 0o755 })
  const fsys = new FileSystem(ns, await ContentStore.create(path.join(dir, 'data')))
  t.teardown(async () => { await fsys.close(); await store.close() })
  fsys.attachLoader(new ContentLoader(fsys.content, {
    fetcherFor: async (inode) => {
      const r = inode.remote!
      return async (start, end, signal) => await getObjectRange(c, r.bucket, r.key, r.etag, start, end === undefined ? undefined : end - 1, signal)
    },
    onLoaded: async (ino, etag) => { await fsys.markLoaded(ino, etag) },
    deadlineMs: 30_000
  }))
  const read = async (): Promise<string> => {
    const fh = await fsys.open('/f')
    try {
      const buf = Buffer.alloc(64)
      return buf.subarray(0, await fsys.read(fh, buf, 0)).toString()
    } finally { await fsys.release(fh) }
  }
  const entry = (key: string, etag: string, size: number): ImportItem =>
    ({ components: [key], type: 'file', meta: {}, remote: { dra: 'dra-x', bucket: BUCKET, key, etag, size, modified: 0 } })
  const item = async (key: string, body: string): Promise<ImportItem> =>
    entry(key, (await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }))).ETag!, body.length)
  // Entries the batch finds unchanged (never read, so their objects need not exist).
  const others = Array.from({ length: OTHERS }, (_, i) => entry(`o${i}`, '"o"', 1))
  await importEntries(ns, fsys.content, 1, [await item('f', 'petals'), ...others])
  t.equal(await read(), 'petals', 'loaded on first read')

  const changing = importEntries(ns, fsys.content, 1, [await item('f', 'new petals'), ...others])
  const ino = (await fsys.resolve('/f')).ino
  while (!isReleased((await ns.get(ino)).hsm)) await new Promise((resolve) => setImmediate(resolve))
  const duringImport = read()
  await changing
  t.equal(await duringImport, 'new petals', 'the read during the import')
  t.equal(await read(), 'new petals', 'a read after it')
  t.match((await fsys.getxattr('/f', 'user.s3link.hsm_state')).toString(), /^\(0x00000009\) exists archived/, 'loaded')

  // The same for a release (hsm_release): a reader opening the file while it is being released.
  const releasing = fsys.releaseContent(ino)
  while (!isReleased((await ns.get(ino)).hsm)) await new Promise((resolve) => setImmediate(resolve))
  const duringRelease = read()
  t.match(await releasing, { released: 10 })
  t.equal(await duringRelease, 'new petals', 'the read during the release')
  t.equal(await read(), 'new petals', 'a read after it')
})
