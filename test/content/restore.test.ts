// The restore walk and its bounded parallel loading, against an in-memory tree and a fake loader.
import t from 'tap'
import { restore, CHUNK, type RestoreEvent, type RestoreTree, type RestoreLoader } from '../../src/content/restore'
import { type Inode, S_IFDIR, S_IFREG, S_IFLNK } from '../../src/namespace/inode'
import { IMPORTED_RELEASED, HS_EXISTS, HS_ARCHIVED } from '../../src/namespace/hsm'
import { fsError } from '../../src/util/errors'

type Entry = { kind: 'dir' } | { kind: 'file', size: number, hsm?: number } | { kind: 'link' }

/** A tree from { path: entry }; `links` adds names of existing inodes (hard links). */
function tree (entries: Record<string, Entry>, links: Record<string, string> = {}): RestoreTree & { inodes: Map<string, Inode>, marked: Array<[number, string]> } {
  const inodes = new Map<string, Inode>()
  let ino = 1
  for (const [p, e] of Object.entries({ '/': { kind: 'dir' } as Entry, ...entries })) {
    const mode = e.kind === 'dir' ? S_IFDIR | 0o755 : e.kind === 'link' ? S_IFLNK | 0o777 : S_IFREG | 0o644
    const size = e.kind === 'file' ? e.size : 0
    const hsm = e.kind === 'file' ? e.hsm ?? IMPORTED_RELEASED : undefined
    inodes.set(p, { ino: ino++, mode, size, hsm, remote: { etag: `"e${ino}"` } } as unknown as Inode)
  }
  for (const [p, target] of Object.entries(links)) inodes.set(p, inodes.get(target) as Inode)
  const marked: Array<[number, string]> = []
  return {
    inodes,
    marked,
    getattr: async (p) => {
      const inode = inodes.get(p === '' ? '/' : p)
      if (inode === undefined) throw fsError('ENOENT', `no such entry: ${p}`)
      return inode
    },
    readdir: async (dir) => {
      const prefix = dir === '/' ? '/' : dir + '/'
      return [...inodes.keys()].filter((p) => p !== '/' && p.startsWith(prefix) && !p.slice(prefix.length).includes('/')).sort().map((p) => ({ name: p.slice(prefix.length) }))
    },
    markLoaded: async (ino, etag) => {
      marked.push([ino, etag])
      for (const i of inodes.values()) if (i.ino === ino) i.hsm = HS_EXISTS | HS_ARCHIVED
    }
  }
}

function loader (opts: { failIno?: number, delayMs?: number } = {}): RestoreLoader & { calls: Array<[number, number, number]>, peak: number } {
  let running = 0
  const l = {
    calls: [] as Array<[number, number, number]>,
    peak: 0,
    ensure: async (inode: Inode, offset: number, length: number) => {
      l.calls.push([inode.ino, offset, length])
      running++
      l.peak = Math.max(l.peak, running)
      try {
        await new Promise((resolve) => setTimeout(resolve, opts.delayMs ?? 5))
        if (inode.ino === opts.failIno) throw fsError('EIO', 'loading the content from S3 failed: gone')
      } finally { running-- }
    }
  }
  return l
}

async function run (tr: RestoreTree, ld: RestoreLoader, paths: string[], parallel = 4, signal?: AbortSignal) {
  const events: RestoreEvent[] = []
  const summary = await restore(tr, ld, paths, { parallel, signal, onEvent: (e) => { events.push(e) } })
  return { events, summary }
}

t.test('directories are walked; only released regular files load, each once, at most N at a time', async (t) => {
  const tr = tree({
    '/a': { kind: 'dir' },
    '/a/1': { kind: 'file', size: 10 },
    '/a/2': { kind: 'file', size: 20 },
    '/a/local': { kind: 'file', size: 5, hsm: 0 },
    '/a/loaded': { kind: 'file', size: 5, hsm: HS_EXISTS | HS_ARCHIVED },
    '/a/link': { kind: 'link' },
    '/a/sub': { kind: 'dir' },
    '/a/sub/3': { kind: 'file', size: 30 },
    '/a/sub/4': { kind: 'file', size: 40 },
    '/a/sub/5': { kind: 'file', size: 0 },
    '/b': { kind: 'file', size: 1 }
  }, { '/a/sub/hardlink': '/a/1' })
  const ld = loader()
  const { events, summary } = await run(tr, ld, ['/a', '/a/sub/3', '/b'], 2)
  t.same(events[0], { total: 6, bytes: 101, skipped: 2 }, 'the total comes first; overlapping arguments and hard links count once')
  t.same(summary, { done: true, loaded: 6, failed: 0, skipped: 2, bytes: 101 })
  t.equal(ld.peak, 2, 'never more than --parallel loads at once')
  t.same(new Set(ld.calls.map(([ino]) => ino)).size, 5, 'five files with content, the empty one needs no load')
  t.equal(tr.marked.length, 6, 'each loaded file is marked loaded, the empty one too')
  t.same(events.filter((e) => 'ok' in e).map((e) => (e as { path: string }).path).sort(), ['/a/1', '/a/2', '/a/sub/3', '/a/sub/4', '/a/sub/5', '/b'])

  const again = await run(tr, ld, ['/'])
  t.same(again.summary, { done: true, loaded: 0, failed: 0, skipped: 8, bytes: 0 }, 'a second restore is a no-op')
})

t.test('failures are reported per path and do not stop the others', async (t) => {
  const tr = tree({ '/d': { kind: 'dir' }, '/d/ok': { kind: 'file', size: 3 }, '/d/bad': { kind: 'file', size: 4 } })
  const bad = (tr.inodes.get('/d/bad') as Inode).ino
  const { events, summary } = await run(tr, loader({ failIno: bad }), ['/missing', '/d'])
  t.same(events[0], { path: '/missing', error: 'ENOENT: no such entry: /missing' }, 'a missing argument is reported during the walk')
  t.same(summary, { done: true, loaded: 1, failed: 2, skipped: 0, bytes: 3 })
  t.match(events.find((e) => 'error' in e && e.path === '/d/bad'), { error: /S3 failed/ })
  t.equal(tr.inodes.get('/d/bad')?.hsm, IMPORTED_RELEASED, 'the failed file stays released')
})

t.test('a large file loads in chunks and reports its progress', async (t) => {
  const size = 2 * CHUNK + 100
  const tr = tree({ '/big': { kind: 'file', size } })
  const ld = loader()
  const { events } = await run(tr, ld, ['/big'])
  t.same(ld.calls.map(([, offset]) => offset), [0, CHUNK, 2 * CHUNK])
  t.same(events.slice(1), [{ path: '/big', loading: CHUNK }, { path: '/big', loading: 2 * CHUNK }, { path: '/big', ok: true, bytes: size }])
})

t.test('an abort stops the restore without waiting for loads in flight', async (t) => {
  const entries: Record<string, Entry> = {}
  for (let i = 0; i < 20; i++) entries[`/f${i}`] = { kind: 'file', size: 1 }
  const tr = tree(entries)
  const abort = new AbortController()
  setTimeout(() => abort.abort(new Error('the daemon is stopping')), 30)
  const started = Date.now()
  const { summary } = await run(tr, loader({ delayMs: 200 }), ['/'], 2, abort.signal)
  t.ok(Date.now() - started < 150, 'returned at once')
  t.equal(summary.aborted, true)
  t.equal(summary.loaded, 0)
  t.equal(summary.failed, 2, 'the two in flight are reported as failed')
})
