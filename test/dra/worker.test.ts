/**
 * The DRA worker against a real store with a fake tree and a fake bucket probe: one request at a
 * time in queue order, the verdicts of the check (AVAILABLE / MISCONFIGURED / FAILED), delete with
 * and without the data, the periodic health check, and stop leaving an unfinished request queued.
 */
import t, { type Test } from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Store } from '../../src/store/db'
import { Associations, type PathKind } from '../../src/dra/associations'
import { DraWorker } from '../../src/dra/worker'
import type { ProbeResult } from '../../src/repo/bucket-probe'
import type { Logger } from '../../src/daemon/logger'

const FS = { id: 'fs-0123456789abcdef0', region: 'us-east-1', account: '000000000000' }
const quiet = { info () {}, warn () {}, error () {}, debug () {} } as unknown as Logger

interface Harness {
  dras: Associations
  worker: DraWorker
  dirs: Set<string>
  calls: string[]
  /** What the probe answers per bucket (default: healthy); a promise holds the probe. */
  buckets: Map<string, Partial<ProbeResult> | Promise<Partial<ProbeResult>>>
  maxConcurrent: () => number
  open: () => Promise<void>
}

async function harness (t: Test, checkIntervalMs = 3_600_000): Promise<Harness> {
  const root = await fs.promises.mkdtemp(path.join(os.tmpdir(), 's3link-draw-'))
  const store = await Store.open(root)
  t.teardown(async () => {
    await h.worker.stop()
    await store.close()
    await fs.promises.rm(root, { recursive: true, force: true })
  })
  const dirs = new Set<string>()
  const calls: string[] = []
  const buckets = new Map<string, Partial<ProbeResult> | Promise<Partial<ProbeResult>>>()
  const norm = (p: string): string => p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p
  const kind = async (p: string): Promise<PathKind> => dirs.has(norm(p)) ? 'directory' : 'missing'
  let running = 0
  let max = 0
  const h = {
    dirs, calls, buckets,
    maxConcurrent: () => max,
    dras: await Associations.open(store, FS, kind),
    worker: undefined as unknown as DraWorker,
    async open () {
      h.worker = new DraWorker({
        associations: h.dras,
        tree: {
          kind,
          ensureDir: async (p) => { calls.push(`mkdir ${p}`); if (p.startsWith('/file')) throw new Error('/file exists and is not a directory'); dirs.add(norm(p)) },
          removeTree: async (p) => { calls.push(`rm ${p}`); dirs.delete(norm(p)) }
        },
        probe: async (bucket) => {
          running++
          max = Math.max(max, running)
          calls.push(`probe ${bucket}`)
          try {
            const r = await (buckets.get(bucket) ?? {})
            return { bucketname: bucket, reachable: true, authorized: true, exists: true, latencyMs: 1, credentials: 'static', ...r }
          } finally { running-- }
        },
        log: quiet,
        checkIntervalMs
      })
      h.worker.start()
    }
  }
  await h.open()
  return h
}

/** Waits until the association reaches a lifecycle (or is gone, for undefined). */
async function until (dras: Associations, id: string, lifecycle: string | undefined, ms = 3000): Promise<void> {
  const end = Date.now() + ms
  while (dras.get(id)?.Lifecycle !== lifecycle) {
    if (Date.now() > end) throw new Error(`${id} is ${String(dras.get(id)?.Lifecycle)}, not ${String(lifecycle)}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

const idOf = (a: Record<string, unknown>): string => (a.Association as { AssociationId: string }).AssociationId
const create = async (h: Harness, fsPath: string, repo: string): Promise<string> =>
  idOf(await h.dras.create({ FileSystemId: FS.id, FileSystemPath: fsPath, DataRepositoryPath: repo }))

t.test('create makes the directory and settles on the probe\'s verdict', async (t) => {
  const h = await harness(t)
  h.buckets.set('denied', { authorized: false, error: 'access denied: the credentials may not list denied (403 AccessDenied)' })
  h.buckets.set('gone', { authorized: false, exists: false, error: 'bucket gone does not exist at this endpoint (404 NoSuchBucket)' })
  const ok = await create(h, '/ns1/path1/', 's3://good/p/')
  const denied = await create(h, '/ns2', 's3://denied/p/')
  const gone = await create(h, '/ns3', 's3://gone/p/')
  const file = await create(h, '/file/x', 's3://good/q/')
  await until(h.dras, file, 'FAILED')
  t.match(h.dras.get(ok), { Lifecycle: 'AVAILABLE' })
  t.equal(h.dras.get(ok)?.FailureDetails, undefined)
  t.ok(h.dirs.has('/ns1/path1'), 'the directory was made')
  t.match(h.dras.get(denied), { Lifecycle: 'MISCONFIGURED', FailureDetails: { Message: 'cannot use the S3 bucket denied: access denied: the credentials may not list denied (403 AccessDenied)' } })
  t.match(h.dras.get(gone), { Lifecycle: 'FAILED', FailureDetails: { Message: /^the S3 bucket gone does not exist/ } })
  t.match(h.dras.get(file), { Lifecycle: 'FAILED', FailureDetails: { Message: 'cannot create the directory /file/x: /file exists and is not a directory' } })
  t.same(h.calls, ['mkdir /ns1/path1/', 'probe good', 'mkdir /ns2', 'probe denied', 'mkdir /ns3', 'probe gone', 'mkdir /file/x'], 'in queue order')
  t.equal(h.dras.pendingRequests(), 0)
})

t.test('one request at a time', async (t) => {
  const h = await harness(t)
  let release!: () => void
  h.buckets.set('slow', new Promise((resolve) => { release = () => resolve({}) }))
  const a = await create(h, '/a', 's3://slow/a/')
  const b = await create(h, '/b', 's3://slow/b/')
  const c = await create(h, '/c', 's3://good/c/')
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.same([a, b, c].map((id) => h.dras.get(id)?.Lifecycle), ['CREATING', 'CREATING', 'CREATING'], 'the rest wait behind the first')
  t.same(h.calls, ['mkdir /a', 'probe slow'])
  release()
  await until(h.dras, c, 'AVAILABLE')
  t.equal(h.maxConcurrent(), 1)
  t.same([a, b].map((id) => h.dras.get(id)?.Lifecycle), ['AVAILABLE', 'AVAILABLE'])
})

t.test('update re-checks; delete removes the data only when asked', async (t) => {
  const h = await harness(t)
  const keep = await create(h, '/keep', 's3://good/k/')
  const drop = await create(h, '/drop', 's3://good/d/')
  await until(h.dras, drop, 'AVAILABLE')
  h.buckets.set('good', { authorized: false, error: 'cannot reach the endpoint (ECONNREFUSED)' })
  await h.dras.update({ AssociationId: keep })
  await until(h.dras, keep, 'MISCONFIGURED')
  t.match(h.dras.get(keep)?.FailureDetails, { Message: 'cannot use the S3 bucket good: cannot reach the endpoint (ECONNREFUSED)' })
  h.buckets.delete('good')
  await h.dras.update({ AssociationId: keep })
  await until(h.dras, keep, 'AVAILABLE')

  h.calls.length = 0
  await h.dras.delete({ AssociationId: keep })
  await h.dras.delete({ AssociationId: drop, DeleteDataInFileSystem: true })
  await until(h.dras, drop, undefined)
  t.equal(h.dras.get(keep), undefined)
  t.same(h.calls, ['rm /drop'], 'only the delete asking for it removed data')
  t.ok(h.dirs.has('/keep'))
  t.notOk(h.dirs.has('/drop'))
})

t.test('the periodic check: MISCONFIGURED and back, FAILED when the directory is gone', async (t) => {
  const h = await harness(t, 100)
  const a = await create(h, '/a', 's3://flaky/a/')
  const b = await create(h, '/b', 's3://good/b/')
  await until(h.dras, b, 'AVAILABLE')
  h.buckets.set('flaky', { authorized: false, error: 'access denied (403 AccessDenied)' })
  await until(h.dras, a, 'MISCONFIGURED')
  h.buckets.delete('flaky')
  await until(h.dras, a, 'AVAILABLE')
  t.equal(h.dras.get(a)?.FailureDetails, undefined)
  h.dirs.delete('/b')
  await until(h.dras, b, 'FAILED')
  t.match(h.dras.get(b)?.FailureDetails, { Message: 'the file system path /b no longer exists' })
  h.dirs.add('/b')
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(h.dras.get(b)?.Lifecycle, 'FAILED', 'FAILED is final')
})

t.test('the periodic check: a transient failure turns AVAILABLE into MISCONFIGURED only when it lasts', async (t) => {
  const h = await harness(t, 50)
  const a = await create(h, '/a', 's3://blip/a/')
  await until(h.dras, a, 'AVAILABLE')
  const probes = (): number => h.calls.filter((c) => c === 'probe blip').length
  const waitProbes = async (n: number): Promise<void> => {
    const end = Date.now() + 3000
    while (probes() < n && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 5))
  }
  const seen: string[] = []
  h.dras.on('changed', (id: string) => { if (id === a) seen.push(String(h.dras.get(a)?.Lifecycle)) })
  const blip = { authorized: false, transient: true, error: 'the server answered 500 InternalError' }
  h.buckets.set('blip', blip)
  await waitProbes(probes() + 2)
  h.buckets.delete('blip')
  await waitProbes(probes() + 2)
  t.same(seen, [], 'two failed checks in a row, then a good one: it never left AVAILABLE')
  h.buckets.set('blip', blip)
  await until(h.dras, a, 'MISCONFIGURED')
  t.match(h.dras.get(a)?.FailureDetails, { Message: /500 InternalError/ })
  h.buckets.delete('blip')
  await until(h.dras, a, 'AVAILABLE')
})

t.test('a request does not wait behind a health check that hangs', async (t) => {
  const h = await harness(t, 100)
  const a = await create(h, '/a', 's3://hangs/a/')
  await until(h.dras, a, 'AVAILABLE')
  let release!: () => void
  h.buckets.set('hangs', new Promise((resolve) => { release = () => { h.buckets.delete('hangs'); resolve({ authorized: false, error: 'late' }) } }))
  const alive = setInterval(() => {}, 1000)
  t.teardown(() => { clearInterval(alive); release() })
  const end = Date.now() + 2000
  while (h.calls.filter((c) => c === 'probe hangs').length < 2 && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 5))
  const started = Date.now()
  const b = await create(h, '/b', 's3://good/b/')
  await until(h.dras, b, 'AVAILABLE', 1000)
  t.ok(Date.now() - started < 1000, 'the create was worked at once')
  release()
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(h.dras.get(a)?.Lifecycle, 'AVAILABLE', 'the abandoned check\'s verdict was dropped')
})

t.test('stop leaves an unfinished request queued; the next start works it', async (t) => {
  const h = await harness(t)
  h.buckets.set('held', new Promise(() => {}))
  // stop() waits on an unref'ed timer (the daemon has other handles): keep this process alive.
  const alive = setInterval(() => {}, 1000)
  t.teardown(() => clearInterval(alive))
  const id = await create(h, '/held', 's3://held/p/')
  await new Promise((resolve) => setTimeout(resolve, 50))
  const started = Date.now()
  await h.worker.stop()
  t.ok(Date.now() - started < 2500, 'stop does not wait for the probe')
  t.equal(h.dras.get(id)?.Lifecycle, 'CREATING')
  t.equal(h.dras.pendingRequests(), 1)
  h.buckets.delete('held')
  await h.open()
  await until(h.dras, id, 'AVAILABLE')
})
