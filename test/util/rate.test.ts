import t from 'tap'
import { RateMeter } from '../../src/util/rate'

t.test('a steady flow reads as its rate; silence brings it down', async (t) => {
  let now = 0
  const meter = new RateMeter(250, () => now)
  for (; now < 5000; now += 10) meter.add(1_000_000) // 1 MB every 10 ms: 100 MB/s
  const rate = meter.perSecond()
  t.ok(rate > 95e6 && rate < 105e6, `about 100 MB/s: ${rate}`)
  now += 2500 // ten half-lives
  t.ok(meter.perSecond() < rate / 1000, 'a thousandth of it after 2.5 s of nothing')
  t.equal(new RateMeter().perSecond(), 0, 'nothing added: 0')
})
