// The hard-link index (src/namespace/links.ts) without a mount: every name of a file with several
// is indexed, in the batch that changes its dirents, and a change through one name is reported under all.
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Store } from '../../src/store/db'
import { Namespace } from '../../src/namespace/namespace'
import { ContentStore } from '../../src/content/content'
import { FileSystem, type NsChange } from '../../src/fs/filesystem'
import { linkName } from '../../src/store/keys'

const ROOT = { uid: 0, gid: 0 }

interface Opened { fsys: FileSystem, store: Store, changes: NsChange[], close: () => Promise<void> }

async function open (dir: string): Promise<Opened> {
  const store = await Store.open(path.join(dir, 'db'))
  const ns = await Namespace.open(store, { uid: 0, gid: 0, mode: 0o755 })
  const fsys = new FileSystem(ns, await ContentStore.create(path.join(dir, 'data')))
  const changes: NsChange[] = []
  fsys.onChange(async (_tx, change) => { changes.push(change) })
  return { fsys, store, changes, close: async () => { await fsys.close(); await store.close() } }
}

async function tmp (t: Tap.Test): Promise<string> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 's3link-links-'))
  t.teardown(() => fs.promises.rm(dir, { recursive: true, force: true }))
  return dir
}

const write = async (fsys: FileSystem, p: string, data: string, create = true): Promise<void> => {
  const fh = create ? (await fsys.createFile(p, 0o644, ROOT)).fh : await fsys.open(p)
  await fsys.write(fh, Buffer.from(data), 0)
  await fsys.release(fh, p)
}

/** Every `links:` entry, as `ino:<n> <parent>/<name>`. */
async function index (store: Store): Promise<string[]> {
  const out: string[] = []
  for await (const key of store.keys({ gt: 'links:', lt: 'links;' })) {
    const { parent, name } = linkName(key)
    out.push(`ino:${parseInt(key.slice(6, 22), 16)} ${parent}/${name}`)
  }
  return out
}

const paths = async (fsys: FileSystem, p: string): Promise<string[]> => (await fsys.pathsOf(await fsys.getattr(p))).sort()

t.test('link indexes both names; a write through one is reported under every name', async (t) => {
  const { fsys, store, changes, close } = await open(await tmp(t))
  t.teardown(close)
  await fsys.mkdir('/d', 0o755, ROOT)
  await write(fsys, '/d/a', 'one')
  t.same(await index(store), [], 'a file with one name has no entries')
  await fsys.link('/d/a', '/d/b')
  const ino = (await fsys.getattr('/d/a')).ino
  const d = (await fsys.getattr('/d')).ino
  t.same(await index(store), [`ino:${ino} ${d}/a`, `ino:${ino} ${d}/b`])
  t.same(await paths(fsys, '/d/b'), ['/d/a', '/d/b'])
  changes.length = 0
  await write(fsys, '/d/a', 'two', false)
  t.same(changes, [{ kind: 'content', path: '/d/a' }, { kind: 'content', path: '/d/b' }])
  changes.length = 0
  await fsys.chmod('/d/b', 0o600)
  t.same(changes.map((c) => c).sort((x, y) => ('path' in x && 'path' in y ? x.path.localeCompare(y.path) : 0)),
    [{ kind: 'meta', path: '/d/a' }, { kind: 'meta', path: '/d/b' }], 'chmod changes the shared inode')
  changes.length = 0
  await fsys.truncate('/d/b', 1)
  t.same(changes.length, 2, 'truncate by path too')
})

t.test('unlink down to one name removes the last entry; three names keep two', async (t) => {
  const { fsys, store, changes, close } = await open(await tmp(t))
  t.teardown(close)
  await write(fsys, '/a', 'x')
  await fsys.link('/a', '/b')
  await fsys.link('/b', '/c')
  t.equal((await index(store)).length, 3)
  await fsys.unlink('/a')
  t.same((await index(store)).map((e) => e.split(' ')[1]), ['1/b', '1/c'])
  t.same(await paths(fsys, '/b'), ['/b', '/c'])
  await fsys.unlink('/c')
  t.same(await index(store), [], 'one name left: no entries')
  t.same(await fsys.pathsOf(await fsys.getattr('/b'), '/b'), ['/b'])
  changes.length = 0
  await fsys.link('/b', '/e')
  await fsys.unlink('/b')
  await fsys.unlink('/e')
  t.same(await index(store), [], 'nothing left behind by a removed inode')
})

t.test('rename of a linked file, rename over a linked name, rename of a directory above one', async (t) => {
  const { fsys, store, close } = await open(await tmp(t))
  t.teardown(close)
  await fsys.mkdir('/x', 0o755, ROOT)
  await fsys.mkdir('/y', 0o755, ROOT)
  await fsys.mkdir('/y/z', 0o755, ROOT)
  await write(fsys, '/x/a', 'A')
  await fsys.link('/x/a', '/y/z/b')
  await fsys.rename('/x/a', '/x/c')
  t.same(await paths(fsys, '/x/c'), ['/x/c', '/y/z/b'])
  await fsys.rename('/y', '/w')
  t.same(await paths(fsys, '/x/c'), ['/w/z/b', '/x/c'], 'paths follow a renamed directory')
  await fsys.rename('/w/z', '/x/moved')
  t.same(await paths(fsys, '/x/c'), ['/x/c', '/x/moved/b'], 'and a moved one')
  // Another linked file, renamed over one name of the first: the first keeps one name, no entries.
  await write(fsys, '/x/o', 'O')
  await fsys.link('/x/o', '/x/p')
  const first = (await fsys.getattr('/x/c')).ino
  await fsys.rename('/x/o', '/x/c')
  t.equal((await fsys.getattr('/x/moved/b')).ino, first)
  t.equal((await fsys.getattr('/x/moved/b')).nlink, 1)
  t.same(await paths(fsys, '/x/p'), ['/x/c', '/x/p'])
  t.notOk((await index(store)).some((e) => e.startsWith(`ino:${first} `)), 'the replaced inode has no entries left')
  await fsys.rename('/x/c', '/x/p')
  t.equal((await fsys.getattr('/x/p')).nlink, 2, 'two names of one file: rename does nothing')
})

t.test('the index is durable and survives reopening', async (t) => {
  const dir = await tmp(t)
  let o = await open(dir)
  await o.fsys.mkdir('/d', 0o755, ROOT)
  await write(o.fsys, '/d/a', 'x')
  await o.fsys.link('/d/a', '/b')
  await o.close()
  o = await open(dir)
  t.teardown(o.close)
  t.same(await paths(o.fsys, '/b'), ['/b', '/d/a'])
  await write(o.fsys, '/b', 'y', false)
  t.same(o.changes.map((c) => 'path' in c ? c.path : '').sort(), ['/b', '/d/a'])
})

t.test('removing one name of an exported linked file exports its other names before the deletion', async (t) => {
  const { fsys, changes, close } = await open(await tmp(t))
  t.teardown(close)
  await write(fsys, '/a', 'x')
  await fsys.link('/a', '/b')
  await fsys.ns.mutate(async (tx) => {
    const inode = await fsys.getattr('/a')
    inode.remote = { dra: 'dra-1', bucket: 'b', key: 'a', etag: '"e"', size: 1, modified: 0 }
    tx.putInode(inode)
  })
  changes.length = 0
  await fsys.unlink('/a')
  t.same(changes, [{ kind: 'meta', path: '/b' }, { kind: 'removed', path: '/a' }])
})

t.test('a directory made before names were recorded is found in its parent', async (t) => {
  const { fsys, close } = await open(await tmp(t))
  t.teardown(close)
  await fsys.mkdir('/old', 0o755, ROOT)
  await fsys.ns.mutate(async (tx) => {
    const dir = await fsys.getattr('/old')
    delete dir.name
    tx.putInode(dir)
  })
  await write(fsys, '/old/a', 'x')
  await fsys.link('/old/a', '/b')
  t.same(await paths(fsys, '/b'), ['/b', '/old/a'])
})
