// The export queue without a daemon: it asks how many transfers may run each time it schedules
// (exports run 2 at a time while the mount is written fast, services.ts), coalesces a path's
// changes, and exports every entry once, also past the 10,000 it keeps in memory.
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Store } from '../../src/store/db'
import { Namespace } from '../../src/namespace/namespace'
import { ExportQueue } from '../../src/sync/export-queue'
import { until, untilEqual } from '../fixtures/until'
import { failingReads } from '../fixtures/failing-store'

/** A queue on a fresh database; `change(paths)` queues content changes of paths in one transaction. */
async function openQueue (t: Tap.Test, concurrency?: () => number): Promise<{ queue: ExportQueue, change: (paths: string[]) => Promise<void> }> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 's3link-expq-'))
  t.teardown(() => fs.promises.rm(dir, { recursive: true, force: true }))
  const store = await Store.open(path.join(dir, 'db'))
  const ns = await Namespace.open(store, { uid: 0, gid: 0, mode: 0o755 })
  const queue = await ExportQueue.open(store, ns, () => true, concurrency)
  t.teardown(async () => { await queue.stop(0); await store.close() })
  const change = async (paths: string[]): Promise<void> => {
    await ns.mutate(async (tx) => { for (const p of paths) await queue.onChange(tx, { kind: 'content', path: p }) })
  }
  return { queue, change }
}

t.test('the number of transfers at once follows the concurrency function', async (t) => {
  let slots = 2
  const { queue, change } = await openQueue(t, () => slots)

  let running = 0
  let most = 0
  let done = 0
  const release: Array<() => void> = []
  queue.start(async () => {
    running++
    most = Math.max(most, running)
    await new Promise<void>((resolve) => release.push(resolve))
    running--
    done++
    return 'done'
  })
  await change(Array.from({ length: 12 }, (_, i) => `/f${i}`))
  await until('two transfers run', async () => running === 2)
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(most, 2, 'no more than 2 while the function says 2')

  slots = 8
  release.splice(0).forEach((r) => r()) // two finish: the queue schedules again, now 8 wide
  await until('eight transfers run', async () => running === 8)
  t.equal(most, 8, 'then up to 8')
  while (done < 12) {
    release.splice(0).forEach((r) => r())
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  t.equal(queue.size, 0, 'all exported')
})

t.test('a newer change of a waiting path replaces its entry, inside the window and beyond it', async (t) => {
  const { queue, change } = await openQueue(t)

  await change(['/a', '/b'])
  await change(['/a'])
  t.equal(queue.size, 2, 'while every entry is in memory: coalesced')
  t.ok(await queue.isPending('/a'))
  t.notOk(await queue.isPending('/c'), 'a path never queued is not pending')

  // More entries than the queue keeps in memory (10,000): the last ones are known from LevelDB only.
  await change(Array.from({ length: 10_010 }, (_, i) => `/many/${i}`))
  t.equal(queue.size, 10_012)
  await change(['/a', '/many/10005'])
  t.equal(queue.size, 10_012, 'coalesced in memory and beyond it')
  t.ok(await queue.isPending('/many/10009'), 'an entry beyond the window is pending')
  t.notOk(await queue.isPending('/many/10010'))
})

t.test('beyond the window: entries queued while it drains are all exported, each once', async (t) => {
  const { queue, change } = await openQueue(t)
  const runs = new Map<string, number>()
  queue.start(async (e) => {
    runs.set(e.path, (runs.get(e.path) ?? 0) + 1)
    return 'done'
  })
  // 10,000 fit in memory; the last 5 are in LevelDB only when the first exports finish.
  const first = Array.from({ length: 10_005 }, (_, i) => `/first/${i}`)
  await change(first)
  await until('the first exports ran', async () => runs.size >= 100, 30_000, 5)
  const later = Array.from({ length: 50 }, (_, i) => `/later/${i}`)
  for (const p of later) await change([p]) // queued one by one while it drains
  await change(['/first/10004']) // a newer change of an entry in LevelDB only
  await untilEqual('the queue is empty', async () => queue.size, 0)
  t.same([...first, ...later].filter((p) => runs.get(p) === undefined), [], 'every path exported')
  t.same([...runs].filter(([p, n]) => n > 1 && p !== '/first/10004'), [], 'none twice (but the one changed again)')
  t.ok(await queue.isPending('/first/0') === false)
})

t.test('a failed read of the queue from the database is reported and retried, not left waiting', async (t) => {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 's3link-expq-'))
  t.teardown(() => fs.promises.rm(dir, { recursive: true, force: true }))
  const store = await Store.open(path.join(dir, 'db'))
  t.teardown(async () => { await store.close() })
  const ns = await Namespace.open(store, { uid: 0, gid: 0, mode: 0o755 })
  const before = await ExportQueue.open(store, ns, () => true)
  await ns.mutate(async (tx) => { for (const p of ['/a', '/b']) await before.onChange(tx, { kind: 'content', path: p }) })
  // As after a restart: the entries are in LevelDB only, and the first read of them fails.
  const queue = await ExportQueue.open(failingReads(store, 1), ns, () => true)
  t.teardown(async () => { await queue.stop(0) })
  t.equal(queue.size, 2)
  const failures: number[] = []
  queue.onLoadFailure = (_err, retryInMs) => failures.push(retryInMs)
  const exported: string[] = []
  queue.start(async (e) => { exported.push(e.path); return 'done' })
  await untilEqual('both exported', async () => exported.length, 2, 10_000)
  t.same(exported.sort(), ['/a', '/b'], 'exported once the database reads again, with no further change')
  t.same(failures, [500], 'the failure reported, with when it is tried again')
})
