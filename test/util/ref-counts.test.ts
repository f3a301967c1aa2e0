import t from 'tap'
import { RefCounts } from '../../src/util/ref-counts'

t.test('a key is held until its last holder lets go', async (t) => {
  const c = new RefCounts<number>()
  c.add(7)
  c.add(7)
  t.ok(c.has(7))
  t.equal(c.remove(7), false, 'one holder left')
  t.ok(c.has(7))
  t.equal(c.remove(7), true, 'that was the last')
  t.notOk(c.has(7))
})
