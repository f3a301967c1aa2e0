// KnownDirs: which names a directory made since the start certainly lacks, within a bound on what
// it holds (each directory and each name counts one; the directory with the oldest new name is
// forgotten first).
import t from 'tap'
import { KnownDirs } from '../../src/namespace/known-dirs'

t.test('names of directories made here, bounded', async (t) => {
  const known = new KnownDirs(5)
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
  t.notOk(known.mayHave(1, 'z'), 'two directories and two names: within the bound')
  known.linked(2, 'c')
  t.notOk(known.mayHave(1, 'z'), 'five entries: still within')
  known.linked(2, 'd')
  t.ok(known.mayHave(1, 'z'), 'a sixth: the directory with the oldest new name is forgotten')
  t.notOk(known.mayHave(2, 'z'), 'the other is still known')
  known.linked(2, 'e')
  known.linked(2, 'f')
  t.ok(known.mayHave(2, 'z'), 'a directory alone past the bound is forgotten too')
  known.made(3)
  known.forget(3)
  t.ok(known.mayHave(3, 'z'), 'forget: nothing is known of it any more')
})

t.test('empty directories count against the bound', async (t) => {
  const known = new KnownDirs(100)
  for (let dir = 1; dir <= 1000; dir++) known.made(dir)
  t.ok(known.mayHave(1, 'z'), 'the first ones are forgotten')
  t.notOk(known.mayHave(1000, 'z'), 'the last ones are known')
  t.ok(known.mayHave(900, 'z'), 'no more than the bound are kept')
  t.notOk(known.mayHave(901, 'z'))
})
