// Namespace.onDirsChanged: every commit that writes or deletes directory inodes reports them, so
// that copies of their attributes (the FUSE binding's) are dropped; file-only commits report nothing.
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Store } from '../../src/store/db'
import { Namespace } from '../../src/namespace/namespace'
import { S_IFDIR, S_IFREG, ROOT_INO } from '../../src/namespace/inode'

t.test('commits report the directories they changed or deleted', async (t) => {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 's3link-dirs-'))
  t.teardown(() => fs.promises.rm(dir, { recursive: true, force: true }))
  const store = await Store.open(path.join(dir, 'db'))
  t.teardown(async () => { await store.close() })
  const ns = await Namespace.open(store, { uid: 0, gid: 0, mode: 0o755 })
  const reported: number[][] = []
  ns.onDirsChanged((inos) => reported.push(inos))

  const sub = await ns.mutate(async (tx) => {
    const d = tx.newInode({ mode: S_IFDIR | 0o755, uid: 0, gid: 0, nlink: 2, size: 0, rdev: 0 })
    tx.link(ROOT_INO, 'd', d)
    const root = await ns.get(ROOT_INO)
    root.nlink++
    tx.putInode(root)
    return d
  })
  t.same(reported.splice(0).map((r) => r.sort()), [[ROOT_INO, sub.ino].sort()], 'mkdir: the new directory and its parent')

  const file = await ns.mutate(async (tx) => {
    const f = tx.newInode({ mode: S_IFREG | 0o644, uid: 0, gid: 0, nlink: 1, size: 0, rdev: 0 })
    tx.link(sub.ino, 'f', f)
    return f
  })
  t.same(reported.splice(0), [], 'a file alone: nothing')

  await ns.mutate(async (tx) => { tx.unlink(sub.ino, 'f'); tx.deleteInode(file) })
  t.same(reported.splice(0), [[file.ino]], 'a deleted inode is reported, whatever it was')
})
