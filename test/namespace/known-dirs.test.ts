// KnownDirs: which names a directory made since the start certainly lacks, within a bound on the
// names held (the directory with the oldest new name is forgotten first).
import t from 'tap'
import { KnownDirs } from '../../src/namespace/known-dirs'

t.test('names of directories made here, bounded', async (t) => {
  const known = new KnownDirs(3)
  t.ok(known.mayHave(1, 'a'), 'a directory not made here may have any name')
  known.made(1)
  t.notOk(known.mayHave(1, 'a'), 'one just made has none')
  known.linked(1, 'a')
  known.linked(1, 'a')
  t.ok(known.mayHave(1, 'a'))
  known.unlinked(1, 'a')
  t.notOk(known.mayHave(1, 'a'), 'unlinked')
  known.linked(2, 'x')
  t.ok(known.mayHave(2, 'x'), 'links into a directory not made here are not tracked')

  known.linked(1, 'a')
  known.made(2)
  known.linked(2, 'b')
  known.linked(2, 'c')
  t.notOk(known.mayHave(1, 'z'), 'three names: within the bound')
  known.linked(2, 'd')
  t.ok(known.mayHave(1, 'z'), 'a fourth: the directory with the oldest new name is forgotten')
  t.notOk(known.mayHave(2, 'z'), 'the other is still known')
  known.linked(2, 'e')
  t.ok(known.mayHave(2, 'z'), 'a directory alone past the bound is forgotten too')
  known.made(3)
  known.forget(3)
  t.ok(known.mayHave(3, 'z'), 'forget: nothing is known of it any more')
})
