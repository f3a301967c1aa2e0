// The bounded cache without a mount: the durable count of local bytes (every operation that changes
// it, a reopen, a database from before the count), the choice of files to release, and ENOSPC.
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import winston from 'winston'
import { Store } from '../../src/store/db'
import { Namespace } from '../../src/namespace/namespace'
import { ContentStore } from '../../src/content/content'
import { ContentLoader } from '../../src/content/loader'
import { Cache, parseSize, type CacheLimits } from '../../src/content/cache'
import { FileSystem } from '../../src/fs/filesystem'
import { importEntries } from '../../src/fs/import-entries'
import { HS_ARCHIVED, HS_EXISTS } from '../../src/namespace/hsm'
import { type InodeRecord, decodeInode, localBytes } from '../../src/namespace/inode'
import { META_LOCAL_BYTES, localRange, inodeRange } from '../../src/store/keys'
import { parseConfig } from '../../src/daemon/config'

const ROOT = { uid: 0, gid: 0 }
const log = winston.createLogger({ silent: true })

interface Opened { store: Store, ns: Namespace, fsys: FileSystem, close: () => Promise<void> }

async function open (dir: string): Promise<Opened> {
  const store = await Store.open(path.join(dir, 'db'))
  const ns = await Namespace.open(store, { uid: 0, gid: 0, mode: 0o755 })
  const fsys = new FileSystem(ns, await ContentStore.create(path.join(dir, 'data')))
  let closed = false
  return { store, ns, fsys, close: async () => { if (closed) return; closed = true; await fsys.close(); await store.close() } }
}

async function tmp (t: Tap.Test): Promise<string> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 's3link-cache-'))
  t.teardown(() => fs.promises.rm(dir, { recursive: true, force: true }))
  return dir
}

const write = async (fsys: FileSystem, p: string, bytes: number, fill = 0x61): Promise<void> => {
  const fh = (await fsys.createFile(p, 0o644, ROOT)).fh
  await fsys.write(fh, Buffer.alloc(bytes, fill), 0)
  await fsys.release(fh)
}

const read = async (fsys: FileSystem, p: string): Promise<Buffer> => {
  const inode = await fsys.resolve(p)
  const fh = await fsys.open(p)
  const buf = Buffer.alloc(inode.size)
  const n = await fsys.read(fh, buf, 0)
  await fsys.release(fh)
  return buf.subarray(0, n)
}

/** As if exported: `exists archived` with an object behind it. */
async function archive (fsys: FileSystem, p: string): Promise<void> {
  const inode = await fsys.resolve(p)
  await fsys.ns.mutate(async (tx) => {
    inode.hsm = HS_EXISTS | HS_ARCHIVED
    inode.remote = { dra: 'dra-x', bucket: 'b', key: p.slice(1), etag: `"${p}"`, size: inode.size, modified: 0 }
    tx.putInode(inode)
  })
}

/** The local bytes recounted from every saved record: what the counter must equal. */
async function recount (store: Store): Promise<number> {
  let n = 0
  for await (const [key, record] of store.entries<InodeRecord>(inodeRange())) n += localBytes(decodeInode(parseInt(key.slice(4), 16), record))
  return n
}

const limits = (capacity: number, highWatermark = 90, lowWatermark = 70): CacheLimits => ({ capacity, highWatermark, lowWatermark })

t.test('local bytes follow writes, truncates, links, unlinks, releases, loads and imports, and survive a reopen', async (t) => {
  const dir = await tmp(t)
  let o = await open(dir)
  t.teardown(async () => await o.close())
  const { fsys, ns } = o
  t.equal(ns.localBytes(), 0)

  const fh = (await fsys.createFile('/a', 0o644, ROOT)).fh
  await fsys.write(fh, Buffer.alloc(1000, 1), 0)
  t.equal(ns.localBytes(), 1000, 'an unsaved write counts at once')
  await fsys.write(fh, Buffer.alloc(500, 2), 200)
  t.equal(ns.localBytes(), 1000, 'overwriting adds nothing')
  await fsys.release(fh)
  t.equal(ns.localBytes(), 1000)
  await fsys.link('/a', '/b')
  t.equal(ns.localBytes(), 1000, 'a hard link is one file')
  await fsys.truncate('/a', 300)
  t.equal(ns.localBytes(), 300, 'truncate')
  await fsys.unlink('/a')
  t.equal(ns.localBytes(), 300, 'one name of two gone')
  await fsys.unlink('/b')
  t.equal(ns.localBytes(), 0, 'last name gone')

  const open1 = (await fsys.createFile('/c', 0o644, ROOT)).fh
  await fsys.write(open1, Buffer.alloc(5000), 0)
  await fsys.flush(open1)
  await fsys.unlink('/c')
  t.equal(ns.localBytes(), 5000, 'unlinked while open: still on disk')
  await fsys.write(open1, Buffer.alloc(1000), 5000)
  t.equal(ns.localBytes(), 6000, 'and still growing')
  await fsys.release(open1)
  t.equal(ns.localBytes(), 0, 'gone with its last close')

  await write(fsys, '/d', 2000, 0x64)
  await archive(fsys, '/d')
  t.same(await fsys.releaseContent((await fsys.resolve('/d')).ino), { released: 2000 })
  t.equal(ns.localBytes(), 0, 'released content does not count')
  // A load of the released file, through the real loader from an in-memory "object".
  const loader = new ContentLoader(fsys.content, {
    fetcherFor: async () => async (start, end) => [Buffer.alloc((end ?? 2000) - start, 0x64)],
    onLoaded: async (ino, etag) => { await fsys.markLoaded(ino, etag) },
    deadlineMs: 5000
  })
  fsys.attachLoader(loader)
  t.same(await read(fsys, '/d'), Buffer.alloc(2000, 0x64), 'loads again')
  t.equal(ns.localBytes(), 2000, 'loaded content counts')

  await fsys.mkdir('/dra', 0o755, ROOT)
  const draIno = (await fsys.resolve('/dra')).ino
  await importEntries(ns, fsys.content, draIno, [{ components: ['big'], type: 'file', meta: {}, remote: { dra: 'dra-x', bucket: 'b', key: 'big', etag: '"1"', size: 1 << 30, modified: 0 } }])
  t.equal(ns.localBytes(), 2000, 'an imported (released) file counts nothing')
  // Its object changed in S3 while it was local: released again, its bytes no longer count.
  await archive(fsys, '/d')
  await importEntries(ns, fsys.content, 1, [{ components: ['d'], type: 'file', meta: {}, remote: { dra: 'dra-x', bucket: 'b', key: 'd', etag: '"new"', size: 7, modified: 0 } }])
  t.equal(ns.localBytes(), 0, 'changed in S3: released')

  await write(fsys, '/e', 4096)
  t.equal(ns.localBytes(), 4096)
  t.equal(await recount(o.store), 4096, 'the counter equals a recount of every record')
  await o.close()
  o = await open(dir)
  t.equal(o.ns.localBytes(), 4096, 'the same after a reopen')
  t.equal(await o.store.get(META_LOCAL_BYTES), 4096)
  const indexed: string[] = []
  for await (const f of o.ns.localFiles()) indexed.push(`${f.ino}:${f.bytes}`)
  t.same(indexed, [`${(await o.fsys.resolve('/e')).ino}:4096`], 'the local: index holds the one local file')
})

t.test('a database from before the count is counted once, in steps, and resumes after a stop', async (t) => {
  const dir = await tmp(t)
  let o = await open(dir)
  t.teardown(async () => await o.close())
  for (let i = 0; i < 25; i++) await write(o.fsys, `/f${i}`, 100 * (i + 1))
  const total = 100 * 25 * 26 / 2
  t.equal(o.ns.localBytes(), total)
  // Make it look old: no counter, no index, no `local` in the records.
  const ops: Array<{ type: 'put', key: string, value: unknown } | { type: 'del', key: string }> = [{ type: 'del', key: META_LOCAL_BYTES }]
  for await (const [key, record] of o.store.entries<InodeRecord>(inodeRange())) { delete record.local; ops.push({ type: 'put', key, value: record }) }
  for await (const key of o.store.keys(localRange)) ops.push({ type: 'del', key })
  await o.store.batch(ops)
  await o.close()

  o = await open(dir)
  t.equal(o.ns.localBytesComplete, false)
  t.equal(o.ns.localBytes(), 0, 'nothing counted yet')
  t.equal(await o.ns.countStep(10), false)
  await write(o.fsys, '/new', 7) // changes meanwhile count as usual
  await o.close()
  o = await open(dir)
  t.equal(o.ns.localBytesComplete, false, 'resumes after a stop')
  while (!await o.ns.countStep(10));
  t.equal(o.ns.localBytesComplete, true)
  t.equal(o.ns.localBytes(), total + 7)
  t.equal(await recount(o.store), total + 7)
})

t.test('eviction releases the least recently used clean files, never dirty or open ones', async (t) => {
  const o = await open(await tmp(t))
  t.teardown(async () => await o.close())
  const { fsys } = o
  const KB = 1024
  for (let i = 0; i < 10; i++) await write(fsys, `/f${i}`, 100 * KB, 0x30 + i)
  for (let i = 0; i < 8; i++) await archive(fsys, `/f${i}`) // f8, f9 stay dirty (never exported)
  const cache = new Cache(fsys.cacheHost(), limits(1000 * KB, 90, 50), { log, waitMs: 0 })
  fsys.attachSpace(cache)
  // Use order, oldest first: f3 f0 f1 f2 f4 f5 f6 f7 (f2 is open: not releasable).
  for (const i of [3, 0, 1, 2, 4, 5, 6, 7]) { cache.touch((await fsys.resolve(`/f${i}`)).ino); await new Promise((resolve) => setTimeout(resolve, 2)) }
  const held = await fsys.open('/f2')
  t.equal(cache.used(), 1000 * KB)
  const freed = await cache.evictTo(500 * KB, false)
  t.equal(freed, 500 * KB, 'freed down to the target exactly (five files)')
  const state = async (i: number): Promise<string> => (await fsys.getxattr(`/f${i}`, 'user.s3link.hsm_state')).toString()
  const released: number[] = []
  for (let i = 0; i < 10; i++) if ((await state(i)).includes('released')) released.push(i)
  t.same(released, [0, 1, 3, 4, 5], 'the five least recently used, skipping the open one')
  t.equal(cache.evictions, 5)
  t.equal(cache.used(), 500 * KB)
  await fsys.release(held)
  // Everything releasable gone but f2 (now closed), f6, f7: a target of 0 takes those three only.
  t.equal(await cache.evictTo(0, false), 300 * KB)
  t.equal(cache.used(), 200 * KB, 'dirty files stay')
  t.match(await state(8), /\(0x00000000\)/)
})

t.test('a write that finds no room fails with ENOSPC and damages nothing', async (t) => {
  const o = await open(await tmp(t))
  t.teardown(async () => await o.close())
  const { fsys } = o
  const cache = new Cache(fsys.cacheHost(), limits(64 * 1024), { log, waitMs: 0 })
  fsys.attachSpace(cache)
  await write(fsys, '/a', 40 * 1024, 0x41)
  const fh = (await fsys.createFile('/b', 0o644, ROOT)).fh
  await fsys.write(fh, Buffer.alloc(20 * 1024, 0x42), 0)
  await t.rejects(fsys.write(fh, Buffer.alloc(8 * 1024, 0x43), 20 * 1024), { code: 'ENOSPC' }, 'beyond the capacity')
  t.equal(await fsys.write(fh, Buffer.alloc(1024, 0x44), 0), 1024, 'overwriting within the file still works')
  await t.rejects(fsys.truncate('/a', 100 * 1024), { code: 'ENOSPC' }, 'growing by truncate too')
  await fsys.release(fh)
  t.same(await read(fsys, '/a'), Buffer.alloc(40 * 1024, 0x41), 'earlier files intact')
  t.same(await read(fsys, '/b'), Buffer.concat([Buffer.alloc(1024, 0x44), Buffer.alloc(19 * 1024, 0x42)]), 'the refused write left the file as it was')
  t.equal(cache.used(), 60 * 1024, 'no reservation left behind')
  // A released file cannot load without room either: its reader gets ENOSPC, nothing is fetched.
  let fetched = 0
  fsys.attachLoader(new ContentLoader(fsys.content, {
    fetcherFor: async () => async (start, end) => { fetched++; return [Buffer.alloc((end ?? 32 * 1024) - start)] },
    onLoaded: async (ino, etag) => { await fsys.markLoaded(ino, etag) },
    deadlineMs: 5000,
    space: cache
  }))
  await importEntries(fsys.ns, fsys.content, 1, [{ components: ['r'], type: 'file', meta: {}, remote: { dra: 'dra-x', bucket: 'b', key: 'r', etag: '"r"', size: 32 * 1024, modified: 0 } }])
  await t.rejects(read(fsys, '/r'), { code: 'ENOSPC' }, 'a load without room')
  t.equal(fetched, 0, 'nothing was fetched')
  t.equal(cache.used(), 60 * 1024)
  // Once /a is exported (clean), the same write makes room by releasing it.
  await archive(fsys, '/a')
  const fh2 = await fsys.open('/b')
  t.equal(await fsys.write(fh2, Buffer.alloc(8 * 1024, 0x43), 20 * 1024), 8 * 1024)
  await fsys.release(fh2)
  t.match((await fsys.getxattr('/a', 'user.s3link.hsm_state')).toString(), /released/)
  t.ok(cache.used() <= 64 * 1024)
})

t.test('sizes and watermarks in the config', async (t) => {
  t.equal(parseSize('10GiB'), 10 * 2 ** 30)
  t.equal(parseSize('500Mi'), 500 * 2 ** 20)
  t.equal(parseSize('500M'), 500e6)
  t.equal(parseSize('8 MiB'), 8 << 20)
  t.equal(parseSize('4096'), 4096)
  t.equal(parseSize(4096), 4096)
  t.equal(parseSize('1.5k'), 1500)
  t.equal(parseSize('ten'), undefined)
  t.equal(parseSize('0'), undefined)
  const base = 'name: x\nmountpoint: /m\nstateDir: /s\n'
  const c = parseConfig(base + 'cacheCapacity: 8MiB\n', 'c.yaml')
  t.equal(c.cacheCapacity, 8 << 20)
  t.equal(c.cacheHighWatermark, 90)
  t.equal(c.cacheLowWatermark, 70)
  t.equal(parseConfig(base, 'c.yaml').cacheCapacity, undefined, 'unbounded by default')
  t.throws(() => parseConfig(base + 'cacheCapacity: lots\n', 'c.yaml'), /cacheCapacity: a size in bytes/)
  t.throws(() => parseConfig(base + 'cacheCapacity: 1G\ncacheHighWatermark: 60\ncacheLowWatermark: 60\n', 'c.yaml'), /cacheLowWatermark: must be below cacheHighWatermark \(60\)/)
  t.throws(() => parseConfig(base + 'cacheHighWatermark: 101\n', 'c.yaml'), /cacheHighWatermark/)
})
