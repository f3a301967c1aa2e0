import t from 'tap'
import { Lru } from '../../src/util/lru'
import { Mutex } from '../../src/util/mutex'

t.test('what was not used for longest goes first; a hit keeps an entry; kept entries never go', async (t) => {
  const lru = new Lru<string, number>(6)
  for (const k of ['a', 'b', 'c']) lru.set(k, 0)
  lru.set('d', 0); lru.get('a'); lru.set('e', 0)
  t.same(['b', 'c'].map((k) => lru.get(k)), [undefined, undefined], 'b and c, not used since they were set, are forgotten')
  t.same(['a', 'd', 'e'].map((k) => lru.get(k)), [0, 0, 0], 'a, used again, is kept, and the newer d and e')

  const pinned = new Set(['p'])
  const kept = new Lru<string, number>(4, (k) => pinned.has(k))
  kept.set('p', 0)
  for (let i = 0; i < 100; i++) {
    kept.set(`k${i}`, i)
    t.ok(kept.size <= 4 + 1, 'never more than the capacity, plus what is kept')
  }
  t.equal(kept.get('p'), 0, 'the pinned entry survives 100 newer ones')
  t.equal(kept.get('k0'), undefined)
  t.same([kept.get('k98'), kept.get('k99')], [98, 99], 'the last capacity/2 keys used are there')
  kept.delete('k99')
  t.equal(kept.get('k99'), undefined, 'deleted')
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
