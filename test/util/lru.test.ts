import t from 'tap'
import { Lru } from '../../src/util/lru'
import { Mutex } from '../../src/util/mutex'

t.test('the least recently used entries go first, in batches, kept entries never', async (t) => {
  const pinned = new Set(['a'])
  const lru = new Lru<string, number>(2, (k) => pinned.has(k))
  lru.set('a', 1); lru.set('b', 2); lru.set('c', 3); lru.get('b'); lru.set('d', 4)
  t.equal(lru.size, 2, 'back to capacity once over it by more than 5% and one entry')
  t.equal(lru.get('a'), 1, 'pinned a survives')
  t.equal(lru.get('c'), undefined, 'c was the least recently used evictable entry')
  t.equal(lru.get('b'), undefined, 'then b')
  t.equal(lru.get('d'), 4)
})

t.test('the mutex runs one at a time, in order, and survives a failure', async (t) => {
  const m = new Mutex()
  const order: string[] = []
  const slow = m.run(async () => { await new Promise((r) => setTimeout(r, 20)); order.push('slow') })
  const failing = m.run(async () => { order.push('fail'); throw new Error('x') })
  const fast = m.run(async () => { order.push('fast') })
  await slow; await t.rejects(failing); await fast
  t.same(order, ['slow', 'fail', 'fast'])
})
