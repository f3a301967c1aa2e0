// The FUSE-free core, without a mount: semantics and crash consistency at the API level.
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Store } from '../../src/store/db'
import { Namespace } from '../../src/namespace/namespace'
import { ContentStore } from '../../src/content/content'
import { FileSystem } from '../../src/fs/filesystem'

const ROOT = { uid: 0, gid: 0 }

async function open (dir: string): Promise<{ fsys: FileSystem, close: () => Promise<void> }> {
  const store = await Store.open(path.join(dir, 'db'))
  const ns = await Namespace.open(store, { uid: 0, gid: 0, mode: 0o755 })
  const fsys = new FileSystem(ns, await ContentStore.create(path.join(dir, 'data')))
  return { fsys, close: async () => { await fsys.close(); await store.close() } }
}

async function tmp (t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 's3link-core-'))
  t.teardown(() => fs.promises.rm(dir, { recursive: true, force: true }))
  return dir
}

const text = async (fsys: FileSystem, p: string): Promise<string> => {
  const fh = await fsys.open(p)
  const buf = Buffer.alloc(1 << 16)
  const n = await fsys.read(fh, buf, 0)
  await fsys.release(fh)
  return buf.subarray(0, n).toString()
}

const write = async (fsys: FileSystem, p: string, data: string): Promise<void> => {
  const fh = (await fsys.createFile(p, 0o644, ROOT)).fh
  await fsys.write(fh, Buffer.from(data), 0)
  await fsys.flush(fh)
  await fsys.release(fh)
}

t.test('rename replaces a file and keeps link counts right', async (t) => {
  const { fsys, close } = await open(await tmp(t))
  t.teardown(close)
  await fsys.mkdir('/a', 0o755, ROOT)
  await fsys.mkdir('/b', 0o755, ROOT)
  await write(fsys, '/a/x', 'new')
  await write(fsys, '/b/y', 'old')
  await fsys.rename('/a/x', '/b/y')
  t.equal(await text(fsys, '/b/y'), 'new')
  await t.rejects(fsys.getattr('/a/x'), { code: 'ENOENT' })
  await fsys.mkdir('/a/sub', 0o755, ROOT)
  await fsys.rename('/a/sub', '/b/sub')
  t.equal((await fsys.getattr('/a')).nlink, 2)
  t.equal((await fsys.getattr('/b')).nlink, 3)
  await t.rejects(fsys.rename('/b', '/b/sub/inner'), { code: 'EINVAL' }, 'a directory cannot move below itself')
  await t.rejects(fsys.rmdir('/b'), { code: 'ENOTEMPTY' })
  await t.rejects(fsys.unlink('/b'), { code: 'EISDIR' })
  await t.rejects(fsys.mkdir(`/${'n'.repeat(256)}`, 0o755, ROOT), { code: 'ENAMETOOLONG' })
})

t.test('a file unlinked while open lives until released; if the daemon dies first, until restart', async (t) => {
  const dir = await tmp(t)
  let { fsys, close } = await open(dir)
  await write(fsys, '/f', 'data')
  const ino = (await fsys.getattr('/f')).ino
  const fh = await fsys.open('/f')
  await fsys.unlink('/f')
  t.equal(await fsys.read(fh, Buffer.alloc(4), 0), 4, 'still readable')
  t.equal((await fsys.fgetattr(fh)).nlink, 0)
  t.ok(fs.existsSync(fsys.content.pathOf(ino)), 'content kept while open')
  // Simulate a crash: close the database without releasing the handle.
  await close()
  ;({ fsys, close } = await open(dir))
  t.teardown(close)
  t.equal(await fsys.reapOrphans(), 1)
  t.notOk(fs.existsSync(fsys.content.pathOf(ino)), 'content removed at start')
  await t.rejects(fsys.ns.get(ino), { code: 'ENOENT' })
})

t.test('what flush saved survives reopening; sizes of files still open are saved by flush', async (t) => {
  const dir = await tmp(t)
  let { fsys, close } = await open(dir)
  await write(fsys, '/kept', 'hello')
  await fsys.link('/kept', '/alias')
  await fsys.symlink('kept', '/sym', ROOT)
  await fsys.setxattr('/kept', 'user.k', Buffer.from('v'), 0)
  await close()
  ;({ fsys, close } = await open(dir))
  t.teardown(close)
  t.equal(await text(fsys, '/alias'), 'hello')
  t.equal((await fsys.getattr('/kept')).nlink, 2)
  t.equal(await fsys.readlink('/sym'), 'kept')
  t.equal((await fsys.getxattr('/kept', 'user.k')).toString(), 'v')
  t.same((await fsys.readdir('/')).map((e) => e.name), ['alias', 'kept', 'sym'])
})
