// The durable queue of S3 changes without a daemon: every change applied once and in order per key,
// however deliveries and applies interleave, and none lost across a reopen.
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Store } from '../../src/store/db'
import { ImportQueue } from '../../src/sync/import-queue'
import type { ObjectChange } from '../../src/sync/events'
import { failingReads } from '../fixtures/failing-store'

const change = (key: string, n: number): ObjectChange => ({ bucket: 'b', key, kind: 'created', sequencer: String(n), eventTime: Date.now() })
const pause = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

async function tmpStore (t: Tap.Test): Promise<Store> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 's3link-impq-'))
  t.teardown(() => fs.promises.rm(dir, { recursive: true, force: true }))
  return await Store.open(path.join(dir, 'db'))
}

t.test('deliveries arriving while others are applied: each change applied once, in order per key, none left', async (t) => {
  const store = await tmpStore(t)
  t.teardown(() => store.close())
  const queue = await ImportQueue.open(store)
  const applied: string[] = []
  queue.start(async (c) => {
    await pause(Number(c.sequencer) % 3) // applies of different lengths, some within the same turn
    applied.push(`${c.key}#${c.sequencer}`)
  })
  const sent: string[] = []
  for (let round = 0; round < 600; round++) {
    const batch = [change(`k${round % 5}`, round), ...(round % 4 === 0 ? [change(`k${round % 5}`, round)] : [])]
    sent.push(...batch.map((c) => `${c.key}#${c.sequencer}`))
    // Deliveries overlap: some are awaited, some not, as concurrent webhook posts are.
    const delivered = queue.enqueue(batch)
    if (round % 3 === 0) await delivered
    if (round % 7 === 0) await pause(1)
  }
  const deadline = Date.now() + 20_000
  while ((applied.length < sent.length || queue.size > 0) && Date.now() < deadline) await pause(20)
  await pause(100)
  t.equal(queue.size, 0, 'nothing left queued')
  t.same([...applied].sort(), [...sent].sort(), 'every change applied once')
  for (const key of ['k0', 'k1', 'k2', 'k3', 'k4']) {
    const order = applied.filter((a) => a.startsWith(key + '#')).map((a) => Number(a.split('#')[1]))
    t.same(order, [...order].sort((a, b) => a - b), `${key}'s changes in delivery order`)
  }
  await queue.enqueue([change('late', 1)])
  while (!applied.includes('late#1') && Date.now() < deadline + 5000) await pause(20)
  t.ok(applied.includes('late#1'), 'a later delivery is still applied')
  await queue.stop()
})

t.test('changes queued before a stop are applied after the reopen, once', async (t) => {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 's3link-impq-'))
  t.teardown(() => fs.promises.rm(dir, { recursive: true, force: true }))
  let store = await Store.open(path.join(dir, 'db'))
  let queue = await ImportQueue.open(store)
  await queue.enqueue([change('a', 1), change('b', 1), change('a', 2)])
  await queue.stop()
  await store.close()
  store = await Store.open(path.join(dir, 'db'))
  t.teardown(() => store.close())
  queue = await ImportQueue.open(store)
  t.equal(queue.size, 3, 'all three still queued')
  const applied: string[] = []
  queue.start(async (c) => { applied.push(`${c.key}#${c.sequencer}`) })
  await queue.enqueue([change('c', 1)])
  for (const deadline = Date.now() + 10_000; queue.size > 0 && Date.now() < deadline;) await pause(20)
  t.same(applied.sort(), ['a#1', 'a#2', 'b#1', 'c#1'])
  t.equal(queue.size, 0)
  await queue.stop()
})

t.test('a failed read of the queue from the database is reported and retried, not left waiting', async (t) => {
  const store = await tmpStore(t)
  t.teardown(() => store.close())
  const queue = await ImportQueue.open(failingReads(store, 2))
  const failures: Array<{ error: string, retryInMs: number }> = []
  queue.onLoadFailure = (err, retryInMs) => failures.push({ error: (err as Error).message, retryInMs })
  const applied: string[] = []
  queue.start(async (c) => { applied.push(c.key) })
  await queue.enqueue([change('a', 1), change('b', 1)])
  const deadline = Date.now() + 10_000
  while (applied.length < 2 && Date.now() < deadline) await pause(20)
  t.same(applied, ['a', 'b'], 'applied once the database reads again, with no further delivery')
  t.same(failures, [{ error: 'EIO: i/o error (injected)', retryInMs: 500 }, { error: 'EIO: i/o error (injected)', retryInMs: 1000 }], 'each failure reported, with a growing delay')
  t.equal(queue.size, 0)
  await queue.stop()
})
