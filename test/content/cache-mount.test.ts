// The bounded cache through a real mount, against the embedded S3 server: a data set twice the
// cache streams through within its capacity (df and /metrics sampled all along), every file reads
// back right; the count and the released files survive a restart and kill -9; with nothing
// exported, writes beyond the capacity get ENOSPC, nothing is lost, and writing works again once
// exports go through.
import t from 'tap'
import { startFs, startS3, type TestFs } from '../fixtures/harness'
import { startFaultProxy } from '../fixtures/fault-proxy'
import { aws } from '../fixtures/aws'
import { until } from '../fixtures/until'

const BUCKET = 'cached'
const MiB = 1 << 20
const CAPACITY = 8 * MiB
const HIGH = Math.floor(CAPACITY * 0.9)
const LOW = Math.floor(CAPACITY * 0.7)

async function setup (t: Tap.Test, endpoint: (s3: { endpoint: string, port: number }) => Promise<string> = async (s3) => s3.endpoint): Promise<TestFs> {
  const s3 = await startS3(t, [BUCKET])
  const tfs = await startFs(t, { config: { importIntervalMs: 3_600_000, draCheckIntervalMs: 1000, cacheCapacity: '8MiB' } })
  t.equal((await tfs.addBucket(BUCKET, await endpoint(s3))).code, 0)
  const id = JSON.parse((await tfs.cli(['status', tfs.name, '--json'])).stdout).id
  const created = await aws(tfs, ['fsx', 'create-data-repository-association', '--file-system-id', id, '--file-system-path', '/d', '--data-repository-path', `s3://${BUCKET}/d/`,
    '--s3', 'AutoImportPolicy={Events=[NEW,CHANGED,DELETED]},AutoExportPolicy={Events=[NEW,CHANGED,DELETED]}'])
  t.equal(created.code, 0, created.stderr)
  await until('the DRA is AVAILABLE', async () => (await aws(tfs, ['fsx', 'describe-data-repository-associations'])).json?.Associations[0].Lifecycle === 'AVAILABLE')
  return tfs
}

const status = async (tfs: TestFs): Promise<any> => JSON.parse((await tfs.cli(['status', tfs.name, '--json'])).stdout)

async function metrics (tfs: TestFs): Promise<Record<string, number>> {
  const text = await (await fetch(tfs.apiUrl() + '/metrics', { headers: { authorization: `Bearer ${tfs.credentials().token}` } })).text()
  const out: Record<string, number> = {}
  for (const line of text.split('\n')) {
    const m = /^(s3link_cache_\w+)(\{[^}]*\})? (\S+)$/.exec(line)
    if (m !== null) out[m[1] + (m[2] ?? '')] = Number(m[3])
  }
  return out
}

/** df of the mount in bytes: [size, used, available]. */
async function df (tfs: TestFs): Promise<number[]> {
  const r = await tfs.sh(`df -B1 --output=size,used,avail ${tfs.mountpoint} | tail -1`)
  return r.stdout.trim().split(/\s+/).map(Number)
}

/** Samples df and the cache gauge every 50 ms until stopped; the largest use seen. */
function sampler (tfs: TestFs): { stop: () => Promise<{ maxDf: number, maxGauge: number, samples: number }> } {
  let running = true
  const result = { maxDf: 0, maxGauge: 0, samples: 0 }
  const loop = (async () => {
    while (running) {
      const [[, used], m] = await Promise.all([df(tfs), metrics(tfs)])
      result.maxDf = Math.max(result.maxDf, used)
      result.maxGauge = Math.max(result.maxGauge, m.s3link_cache_bytes)
      result.samples++
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  })()
  return { stop: async () => { running = false; await loop; return result } }
}

const hsm = async (tfs: TestFs, file: string): Promise<string> => (await tfs.sh(`getfattr --only-values -n user.s3link.hsm_state ${file}`)).stdout

t.test('a data set twice the cache streams through within its capacity; restart and kill -9 keep the count and the released files', async (t) => {
  const tfs = await setup(t)
  t.same(await df(tfs), [CAPACITY, 0, CAPACITY], 'df: the capacity, nothing used')

  const sample = sampler(tfs)
  // 16 files of 1 MiB: writes wait (bounded) for exports to make older files releasable.
  const wrote = await tfs.sh('for i in $(seq -w 1 16); do head -c 1048576 /dev/urandom > d/f$i || exit 1; done; sha256sum d/f* > ../sums')
  t.equal(wrote.code, 0, wrote.stderr)
  await until('everything is exported', async () => (await status(tfs)).queues.export.queued === 0)
  for (let pass = 1; pass <= 2; pass++) {
    const check = await tfs.sh('sha256sum -c --quiet ../sums')
    t.equal(check.code, 0, `pass ${pass}: every file reads back right ${check.stdout}${check.stderr}`)
  }
  const seen = await sample.stop()
  t.ok(seen.samples > 5, `sampled ${seen.samples} times`)
  t.ok(seen.maxDf <= CAPACITY && seen.maxGauge <= CAPACITY, `use stayed within the capacity (df ${seen.maxDf}, gauge ${seen.maxGauge} ≤ ${CAPACITY})`)
  const m = await metrics(tfs)
  t.equal(m.s3link_cache_capacity_bytes, CAPACITY)
  t.ok(m.s3link_cache_evictions_total >= 16, `files were released by the cache (${m.s3link_cache_evictions_total})`)
  t.ok(m['s3link_cache_released_bytes_total{by="cache"}'] >= 16 * MiB, 'and their bytes counted')
  await until('background eviction is back under the high mark', async () => (await metrics(tfs)).s3link_cache_bytes <= HIGH)
  const st = await status(tfs)
  t.ok(st.cache.bytes <= HIGH && st.cache.capacity === CAPACITY && st.cache.lowWatermarkBytes === LOW, 'status: cache')
  t.match((await tfs.cli(['status', tfs.name])).stdout, /cache: {2}\d+\.\d MiB of 8\.0 MiB \(\d+%\), releases above 7\.2 MiB down to 5\.6 MiB; \d+ files released/)
  const [size, used] = await df(tfs)
  t.equal(size, CAPACITY)
  t.equal(used, Math.ceil(st.cache.bytes / 4096) * 4096, 'df: used = local bytes')

  // Sixteen files, at most eight local: the others are released, and stay so across restarts.
  const states = async (): Promise<string[]> => await Promise.all(Array.from({ length: 16 }, async (_, i) => await hsm(tfs, `d/f${String(i + 1).padStart(2, '0')}`)))
  const before = await states()
  const released = before.filter((s) => s.includes('released')).length
  t.ok(released >= 8, `${released} files released`)
  await tfs.restart()
  t.equal((await status(tfs)).cache.bytes, st.cache.bytes, 'the same local bytes after a restart')
  t.same(await states(), before, 'released files are still released')
  await tfs.kill9()
  await tfs.mount()
  t.equal((await status(tfs)).cache.bytes, st.cache.bytes, 'and after kill -9')
  const check = await tfs.sh('sha256sum -c --quiet ../sums')
  t.equal(check.code, 0, `every file reads back right after kill -9 ${check.stdout}${check.stderr}`)
  t.ok((await status(tfs)).cache.bytes <= CAPACITY)
  t.notMatch(tfs.readLog(), /"level":"error"/, 'no errors logged')
})

t.test('with nothing exported, writes beyond the capacity get ENOSPC, nothing is lost, and writing works again once exports go through', async (t) => {
  let proxy: Awaited<ReturnType<typeof startFaultProxy>> | undefined
  const tfs = await setup(t, async (s3) => { proxy = await startFaultProxy(t, s3.port); return proxy.endpoint })
  if (proxy === undefined) throw new Error('no proxy')
  proxy.mode = 'error'
  const wrote = await tfs.sh('for i in 1 2 3 4 5 6 7; do head -c 1048576 /dev/urandom > d/g$i || exit 1; done; sha256sum d/g* > ../sums')
  t.equal(wrote.code, 0, wrote.stderr)
  const started = Date.now()
  const full = await tfs.sh('dd if=/dev/zero of=d/big bs=1M count=2 2>&1')
  t.not(full.code, 0)
  t.match(full.stdout, /No space left on device/, 'dd: ENOSPC')
  t.ok(Date.now() - started < 20_000, 'after a bounded wait for exports')
  t.match(tfs.readLog(), /cache full: ENOSPC/, 'one clear log line')
  const st = await status(tfs)
  t.ok(st.cache.bytes <= CAPACITY, `use within the capacity (${st.cache.bytes})`)
  t.equal((await tfs.sh('sha256sum -c --quiet ../sums')).code, 0, 'the files written before are intact')
  t.equal((await tfs.sh('stat -c %s d/big')).stdout.trim(), String(CAPACITY - 7 * MiB), 'the refused file holds what did fit')

  proxy.mode = 'pass'
  await until('the exports went through', async () => (await status(tfs)).queues.export.queued === 0, 90_000)
  const again = await tfs.sh('dd if=/dev/zero of=d/big2 bs=1M count=2 2>&1')
  t.equal(again.code, 0, `writing works again once exports go through: ${again.stdout}`)
  t.equal((await tfs.sh('sha256sum -c --quiet ../sums')).code, 0, 'and the earlier files still read back right (from S3 where released)')
  t.ok((await status(tfs)).cache.bytes <= CAPACITY)
})
