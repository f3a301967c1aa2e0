// The namespace's commits: grouped changes share one transaction and one LevelDB batch, each caller
// keeping its own result or error; every commit reports the directories it changed or deleted, so
// that copies of their attributes (the FUSE binding's) are dropped.
import t, { type Test } from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Store } from '../../src/store/db'
import { Namespace } from '../../src/namespace/namespace'
import { S_IFDIR, S_IFREG, ROOT_INO } from '../../src/namespace/inode'

async function openNamespace (t: Test): Promise<{ store: Store, ns: Namespace }> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 's3link-ns-'))
  t.teardown(() => fs.promises.rm(dir, { recursive: true, force: true }))
  const store = await Store.open(path.join(dir, 'db'))
  t.teardown(async () => { await store.close() })
  return { store, ns: await Namespace.open(store, { uid: 0, gid: 0, mode: 0o755 }) }
}

t.test('grouped changes share one batch and keep their own outcomes', async (t) => {
  const { store, ns } = await openNamespace(t)
  const batches: number[] = []
  const batch = store.batch.bind(store)
  store.batch = async (ops, opts) => { batches.push(ops.length); await batch(ops, opts) }

  // A change holds the lock while three grouped ones arrive.
  let letGo = (): void => undefined
  let held = (): void => undefined
  const holds = new Promise<void>((resolve) => { held = resolve })
  const holding = ns.mutate(async (tx) => {
    tx.extra.push({ type: 'put', key: 'test:first', value: 1 })
    held()
    await new Promise<void>((resolve) => { letGo = resolve })
  })
  await holds
  const a = ns.mutateGrouped(async (tx) => { tx.extra.push({ type: 'put', key: 'test:a', value: 'a' }); return 'A' })
  const b = ns.mutateGrouped(async () => { throw new Error('b failed before writing') })
  const c = ns.mutateGrouped(async (tx) => { tx.extra.push({ type: 'put', key: 'test:c', value: 'c' }); return 'C' })
  letGo()
  await holding
  t.equal(await a, 'A', 'the first gets its own result')
  await t.rejects(b, /b failed before writing/, 'the failing one gets its own error')
  t.equal(await c, 'C', 'the one after a failure still commits')
  t.same(batches, [1, 2], 'one batch for the holder, one for the three grouped changes')
  t.equal(await store.get('test:a'), 'a')
  t.equal(await store.get('test:c'), 'c')

  // Once a group has run, the next grouped change starts a group of its own: it is not left waiting.
  t.equal(await ns.mutateGrouped(async (tx) => { tx.extra.push({ type: 'put', key: 'test:d', value: 'd' }); return 'D' }), 'D')
  t.same(batches, [1, 2, 1], 'alone, it commits by itself')
  t.equal(await store.get('test:d'), 'd')
})

t.test('commits report the directories they wrote, and the other inodes they wrote or deleted', async (t) => {
  const { ns } = await openNamespace(t)
  const reported: Array<{ dirs: number[], stale: number[] }> = []
  const sorted = (inos: number[]): number[] => [...inos].sort((a, b) => a - b)
  ns.onAttrsChanged(({ dirs, stale }) => reported.push({ dirs: sorted(dirs.map((i) => i.ino)), stale: sorted(stale) }))

  const sub = await ns.mutate(async (tx) => {
    const d = tx.newInode({ mode: S_IFDIR | 0o755, uid: 0, gid: 0, nlink: 2, size: 0, rdev: 0 })
    tx.link(ROOT_INO, 'd', d)
    const root = await ns.get(ROOT_INO)
    root.nlink++
    tx.putInode(root)
    return d
  })
  t.same(reported.splice(0), [{ dirs: sorted([ROOT_INO, sub.ino]), stale: [] }], 'mkdir: the new directory and its parent, as written')

  const file = await ns.mutate(async (tx) => {
    const f = tx.newInode({ mode: S_IFREG | 0o644, uid: 0, gid: 0, nlink: 1, size: 0, rdev: 0 })
    tx.link(sub.ino, 'f', f)
    return f
  })
  t.same(reported.splice(0), [{ dirs: [], stale: [file.ino] }], 'a file written: stale (copies of files are dropped, not updated)')

  await ns.mutate(async (tx) => { file.mode = S_IFREG | 0o600; tx.putInode(file) })
  t.same(reported.splice(0), [{ dirs: [], stale: [file.ino] }], 'a file changed: stale')

  await ns.mutate(async (tx) => { tx.unlink(sub.ino, 'f'); tx.deleteInode(file) })
  t.same(reported.splice(0), [{ dirs: [], stale: [file.ino] }], 'a file deleted: stale')

  await ns.mutate(async (tx) => {
    tx.unlink(ROOT_INO, 'd')
    tx.deleteInode(sub)
    const root = await ns.get(ROOT_INO)
    root.nlink--
    tx.putInode(root)
  })
  t.same(reported.splice(0), [{ dirs: [ROOT_INO], stale: [sub.ino] }], 'rmdir: the parent as written, the directory stale')

  await ns.mutate(async () => undefined)
  t.same(reported.splice(0), [], 'a commit writing no inode: nothing')
})

t.test('a directory made since the start answers for its absent names without reading the database, and stays right', async (t) => {
  const { store, ns } = await openNamespace(t)
  let reads = 0
  const get = store.get.bind(store)
  store.get = async (key) => { reads++; return await get(key) }
  const batch = store.batch.bind(store)
  let failNext = false
  store.batch = async (ops, opts) => {
    if (failNext) { failNext = false; throw new Error('injected: the disk is full') }
    await batch(ops, opts)
  }
  const file = { mode: S_IFREG | 0o644, uid: 0, gid: 0, nlink: 1, size: 0, rdev: 0 }
  const mkdir = async (name: string): Promise<number> => await ns.mutate(async (tx) => {
    const d = tx.newInode({ mode: S_IFDIR | 0o755, uid: 0, gid: 0, nlink: 2, size: 0, rdev: 0 })
    tx.link(ROOT_INO, name, d)
    return d.ino
  })
  const d = await mkdir('d')

  reads = 0
  t.equal(await ns.lookup(d, 'x'), undefined, 'an absent name')
  t.equal(reads, 0, 'answered without a database read')
  const x = await ns.mutate(async (tx) => { const f = tx.newInode(file); tx.link(d, 'x', f); return f })
  t.equal((await ns.lookup(d, 'x'))?.ino, x.ino, 'a name just linked is found')
  await ns.mutate(async (tx) => { tx.unlink(d, 'x'); tx.link(ROOT_INO, 'x', x) })
  t.equal(await ns.lookup(d, 'x'), undefined, 'renamed away: gone from the directory')
  t.equal((await ns.lookup(ROOT_INO, 'x'))?.ino, x.ino, 'and found where it went')
  await ns.mutate(async (tx) => { tx.unlink(ROOT_INO, 'x'); tx.link(d, 'x', x) })
  t.equal((await ns.lookup(d, 'x'))?.ino, x.ino, 'renamed back: found again')

  failNext = true
  await t.rejects(ns.mutate(async (tx) => { tx.link(d, 'y', tx.newInode(file)) }), /disk is full/)
  reads = 0
  t.equal(await ns.lookup(d, 'y'), undefined, 'a name whose commit failed is not there')
  t.ok(reads > 0, 'after a failed commit the directory asks the database again')

  failNext = true
  await t.rejects(mkdir('e'), /disk is full/)
  t.equal(await ns.lookup(ROOT_INO, 'e'), undefined, 'a directory whose making failed does not exist')

  // Many names: memory stays bounded (older directories are forgotten), answers stay right.
  const big = await mkdir('big')
  for (let i = 0; i < 25_000; i += 1000) {
    await ns.mutate(async (tx) => { for (let j = i; j < i + 1000; j++) tx.link(big, `f${j}`, tx.newInode(file)) }, { cold: true })
  }
  t.equal((await ns.lookup(d, 'x'))?.ino, x.ino, 'a forgotten directory\'s names are read from the database')
  t.ok((await ns.lookup(big, 'f24999')) !== undefined, 'as are those of a directory grown past the bound')
  t.equal(await ns.lookup(big, 'f25000'), undefined)
})
