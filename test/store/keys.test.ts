import t from 'tap'
import { inodeKey, direntKey, direntRange, xattrKey, xattrRange, childName, orphanKey, orphanIno } from '../../src/store/keys'

t.test('inode numbers are fixed width, so key order is numeric order', async (t) => {
  const keys = [2, 10, 255, 4096, 2 ** 40].map(inodeKey)
  t.same([...keys].sort(), keys)
  t.equal(inodeKey(255), 'ino:00000000000000ff')
})

t.test("a directory's entries form one range that excludes other directories", async (t) => {
  const r = direntRange(16)
  const inside = [direntKey(16, 'a'), direntKey(16, 'zz'), direntKey(16, '-dash'), direntKey(16, '.hidden')]
  for (const k of inside) t.ok(k > r.gt && k < r.lt, `${k} is in range`)
  for (const k of [direntKey(15, 'a'), direntKey(17, 'a'), xattrKey(16, 'user.a')]) t.notOk(k > r.gt && k < r.lt, `${k} is not`)
  t.equal(childName(direntKey(16, 'name/with')), 'name/with')
  const x = xattrRange(3)
  t.ok(xattrKey(3, 'user.x') > x.gt && xattrKey(3, 'user.x') < x.lt)
  t.equal(orphanIno(orphanKey(12345)), 12345)
})
