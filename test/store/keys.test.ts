import t from 'tap'
import { linkKey, linkName, linkRange, inodeKey, direntKey, direntRange, xattrKey, xattrRange, childName, orphanKey, orphanIno, bucketKey, bucketRange, orphanRange } from '../../src/store/keys'

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

t.test('bucket keys form one range holding every valid bucket name and nothing else', async (t) => {
  for (const name of ['abc', '0-9.z', 'z'.repeat(63)]) t.ok(bucketKey(name) > bucketRange.gt && bucketKey(name) < bucketRange.lt, name)
  for (const k of [orphanKey(1), inodeKey(1), direntKey(1, 'bucket')]) t.notOk(k > bucketRange.gt && k < bucketRange.lt, k)
  t.notOk(bucketKey('abc') > orphanRange.gt && bucketKey('abc') < orphanRange.lt)
})

t.test("an inode's link entries form one range and give back their directory and name", async (t) => {
  const r = linkRange(7)
  for (const k of [linkKey(7, 1, 'a'), linkKey(7, 2 ** 40, 'z.txt')]) t.ok(k > r.gt && k < r.lt, k)
  for (const k of [linkKey(6, 1, 'a'), linkKey(8, 1, 'a'), direntKey(7, 'a')]) t.notOk(k > r.gt && k < r.lt, k)
  t.same(linkName(linkKey(7, 4096, 'with space')), { parent: 4096, name: 'with space' })
})
