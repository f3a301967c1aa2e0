/**
 * Import benchmarks (S3LINK_BENCH_ONLY names: import, lsimport, coldread). One embedded S3 server
 * (s3rver, a child process) and one s3link file system linked to it serve all three; the
 * references are measured against the same server in the same run, by the SDK in a child process
 * (s3tool.ts), so the server's own speed cancels out of the ratios.
 *
 *   import    N objects (100,000 × scale) under many/dNN/, D = 10 directories of N/10, written over
 *             HTTP with 64 PUTs in flight (timed, not a figure). Reference: a raw ListObjectsV2 of
 *             the prefix. Figure: objects/s of the import into /many, and the daemon's peak RSS
 *             (VmHWM: the daemon does nothing else before the import). The import runs as an
 *             import task (`s3link task import … --wait`) when the CLI has it, otherwise as the
 *             DRA's automatic import (importIntervalMs 500; timed from `dra create` to the log
 *             line "automatic import applied changes"). A raw LIST + HEAD per object is measured
 *             too: what an import reading every object's metadata up front would cost (a batch
 *             import lists only; metadata is read at first lookup or in the background).
 *   lsimport  `ls -l` of one imported directory of N/10 entries and `find` of another, right after
 *             the import (cold: this reads the entries' metadata, a HEAD each) and again (warm),
 *             against the same over two local-disk directories of as many empty files, each
 *             measured right after it was created.
 *   coldread  released files of 1 GiB × scale: `dd bs=1M` through the mount (the first read
 *             loads the file from S3) against a raw GetObject of the same object streamed to
 *             nowhere, alternating, REPEAT times, each dd on a copy never read before; best of
 *             each side kept. Also against a GetObject written into a new local file as the
 *             loader writes (1 MiB writes, 8 in flight): what anything that keeps the content
 *             must do besides the GET, and over a file already in the page cache (the same
 *             writes, no new memory): their difference is what allocating page-cache memory
 *             costs this host. Then the time to the first 4 KiB of other released copies,
 *             read at offset 0 and at 900/1024 of the size (range-first loading should make both fast),
 *             REPEAT times each, best kept.
 *
 * The machine is shared by the S3 server, the daemon and the readers: CPU seconds used by the
 * daemon and the server during the import are recorded, as they tell a CPU-bound import from a
 * waiting one better than wall time on a busy machine.
 *
 * Automatic import polls every DRA with an import policy every 500 ms: after its import, each DRA
 * gets `--import none` and the benchmark waits for the S3 server to go idle, so no listing pass
 * runs under the next measurement.
 */
import fs from 'node:fs'
import path from 'node:path'
import { run, sh, sleep, REPEAT, q, count } from './proc'
import * as proc from './proc'
import { BenchFs } from './daemon'
import { BenchS3 } from './s3'
import { MiB, dirKey } from './s3tool'
import type { Report, SectionOptions } from './report'

const BUCKET = 's3link-bench'
const MANY = 'many/'
const BIG = 'big/'
const PUT_IN_FLIGHT = 64
const HEAD_IN_FLIGHT = 32 // as the batch import HEADs directory markers
const AUTO_INTERVAL_MS = 500

const GOAL_IMPORT_RATIO = 0.8
const GOAL_RSS_MB = 300
const GOAL_COLD_READ_RATIO = 0.8
const GOAL_TTFB_MS = 100

const MB = 1e6

export type ImportBenchOptions = SectionOptions

/** The big objects: cold-I (dd), ttfb0-I and ttfbfar-I (time to first byte), I < REPEAT. */
const bigName = (kind: string, i: number): string => `${kind}-${i}.bin`
const bigKey = (kind: string, i: number): string => BIG + bigName(kind, i)
const bigCopies = (): string[] => ['cold', 'ttfb0', 'ttfbfar'].flatMap((kind) =>
  Array.from({ length: REPEAT }, (_, i) => bigKey(kind, i))).filter((k) => k !== bigKey('cold', 0))


/** open + one 4 KiB pread at an offset, timed in the child; the block index checks where the bytes came from. */
const TTFB_PY = `
import os, sys, time, json, struct
p, off = sys.argv[1], int(sys.argv[2])
t0 = time.perf_counter()
fd = os.open(p, os.O_RDONLY)
t1 = time.perf_counter()
data = os.pread(fd, 4096, off)
t2 = time.perf_counter()
os.close(fd)
print(json.dumps({'open': t1 - t0, 'read': t2 - t1, 'total': t2 - t0, 'bytes': len(data), 'block': struct.unpack('<Q', data[:8])[0]}))
`

/** N empty files in a new directory, for the local side of lsimport. */
const MKFILES_PY = `
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d)
for i in range(n):
    os.close(os.open(os.path.join(d, 'f%06d' % i), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
`

interface LogLine { message?: string, timestamp?: string, associationId?: string, [k: string]: unknown }

/** How an import runs: an import task, or the DRA's automatic import (until tasks exist). */
type Mode = 'task' | 'automatic'

class Session {
  readonly s3: BenchS3
  readonly fs: BenchFs
  mode: Mode = 'automatic'
  private logOffset = 0

  constructor (readonly o: ImportBenchOptions) {
    this.s3 = new BenchS3(path.join(o.root, 's3'), BUCKET)
    this.fs = new BenchFs(path.join(o.root, 'fs-import'), 'benchimport')
  }

  /** The daemon's log lines written since the last call. */
  async newLogLines (): Promise<LogLine[]> {
    const fh = await fs.promises.open(this.fs.logPath, 'r')
    try {
      const { size } = await fh.stat()
      if (size <= this.logOffset) return []
      const buf = Buffer.alloc(size - this.logOffset)
      await fh.read(buf, 0, buf.length, this.logOffset)
      const text = buf.toString('utf8')
      const end = text.lastIndexOf('\n') + 1 // a line still being written waits for the next call
      this.logOffset += Buffer.byteLength(text.slice(0, end))
      return text.slice(0, end).split('\n').flatMap((l) => {
        try { return [JSON.parse(l) as LogLine] } catch { return [] }
      })
    } finally {
      await fh.close()
    }
  }

  /**
   * Links `dir` to s3://BUCKET/prefix and imports it: returns the seconds from the start of the
   * import to its end, and the DRA's id. Automatic import is switched off again afterwards.
   */
  async linkAndImport (dir: string, prefix: string, expected: number): Promise<{ seconds: number, id: string, detail: Record<string, unknown> }> {
    const repo = `s3://${BUCKET}/${prefix}`
    if (this.mode === 'task') {
      const created = await this.fs.cli(['dra', 'create', dir, repo, '--wait', '--json'])
      const id = (JSON.parse(created.stdout) as { Association: { AssociationId: string } }).Association.AssociationId
      // Timed from spawn to exit of `--wait`: what a user waits, with up to one poll (0.5 s) and
      // the CLI's start-up (~0.5 s) on top of the import itself.
      const r = await this.fs.cli(['task', 'import', repo, '--wait', '--json'], 3_600_000)
      const task = JSON.parse(r.stdout) as Record<string, unknown>
      return { seconds: r.seconds, id, detail: { task: { TaskId: task.TaskId, Lifecycle: task.Lifecycle, Status: task.Status, StartTime: task.StartTime, EndTime: task.EndTime } } }
    }
    await this.newLogLines() // skip what came before
    const start = Date.now()
    const created = await this.fs.cli(['dra', 'create', dir, repo, '--import', 'NEW,CHANGED,DELETED', '--wait', '--json'])
    const id = (JSON.parse(created.stdout) as { Association: { AssociationId: string } }).Association.AssociationId
    const done = await this.waitForLog((l) => l.message === 'automatic import applied changes' && l.associationId === id,
      Math.max(600_000, expected * 20))
    const seconds = (Date.parse(done.timestamp ?? '') - start) / 1000
    if (!(seconds > 0)) throw new Error(`cannot time the import: log line ${JSON.stringify(done)}`)
    await this.fs.cli(['dra', 'update', id, '--import', 'none', '--wait'])
    const counts = Object.fromEntries(Object.entries(done).filter(([k]) => !['message', 'level', 'timestamp', 'associationId', 'subsystem'].includes(k)))
    const idle = await this.s3.waitIdle()
    return { seconds, id, detail: { counts, waitedForIdleS: idle } }
  }

  private async waitForLog (match: (l: LogLine) => boolean, timeoutMs: number): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs
    while (true) {
      for (const line of await this.newLogLines()) {
        if (match(line)) return line
        if (line.level === 'warn' || line.level === 'error') this.o.log(`daemon ${String(line.level)}: ${String(line.message)} ${JSON.stringify(line)}`)
      }
      if (this.fs.daemon === undefined || this.fs.daemon.exitCode !== null) throw new Error(`the daemon exited:\n${this.fs.logTail()}`)
      if (Date.now() > deadline) throw new Error(`no import result after ${timeoutMs} ms:\n${this.fs.logTail()}`)
      if (proc.aborted) throw new proc.AbortedError()
      await sleep(100)
    }
  }
}

export async function importBenchmarks (o: ImportBenchOptions): Promise<void> {
  const { report, only, log } = o
  const wantMany = only.has('import') || only.has('lsimport')
  const perDir = Math.max(100, Math.round(10_000 * o.scale))
  // lsimport alone needs only its two directories.
  const dirs = only.has('import') ? Math.max(1, Math.round(100_000 * o.scale / perDir)) : 2
  const objects = dirs * perDir
  const bigMib = Math.max(16, Math.round(1024 * o.scale))
  const farMib = Math.floor(bigMib * 900 / 1024)

  const sImport = `import of ${count(objects)} objects (${dirs} prefixes × ${count(perDir)})`
  const sLs = `imported directory of ${count(perDir)} entries`
  const sImportSdk = `import of ${count(objects)} objects, against the S3 calls it needs`
  const sCold = `cold read of a released ${bigMib} MiB file`
  const sColdFile = `${sCold}, against a GET into a local file`
  const all = [only.has('import') ? sImport : '', only.has('import') ? sImportSdk : '', only.has('lsimport') ? sLs : '',
    only.has('coldread') ? sCold : '', only.has('coldread') ? sColdFile : '']
    .filter((x) => x !== '')
  report.reference(sImport, 'raw LIST', 'the same S3 server, ListObjectsV2 of the prefix (SDK, 1,000 per page)')
  report.reference(sCold, 'raw GET', 'the same S3 server, GetObject streamed to nowhere (SDK)')
  report.reference(sColdFile, 'GET to file', 'the same S3 server, GetObject written into a new local file (SDK, 1 MiB writes, 8 in flight, as the loader), closed')
  report.reference(sImportSdk, 'SDK', `the SDK alone doing the same ListObjectsV2 + a HEAD per object (of ${count(perDir)}, best of 2), ${HEAD_IN_FLIGHT} in flight, nothing stored`)

  const s = new Session(o)
  const info: Record<string, unknown> = { objects, dirs, perDir, bigMib }
  report.info.import = info
  try {
    await s.s3.start()
    log(`S3 server at ${s.s3.endpoint}`)
    if (wantMany) {
      log(`populating ${count(objects)} objects (${PUT_IN_FLIGHT} PUTs in flight)`)
      info.populate = await s.s3.tool({ op: 'put', prefix: MANY, dirs, perDir, inFlight: PUT_IN_FLIGHT })
      log(`populated: ${JSON.stringify(info.populate)}`)
    }
    if (only.has('coldread')) {
      log(`writing a ${bigMib} MiB object and ${3 * REPEAT - 1} copies`)
      info.populateBig = await s.s3.tool({ op: 'putbig', key: bigKey('cold', 0), mib: bigMib, copies: bigCopies() })
    }

    let rawList: { objects: number, seconds: number, serverCpu: number } | undefined
    let listHead: { objects: number, seconds: number, listWait: number } | undefined
    if (only.has('import')) {
      // Twice, best kept: the first also warms the server's caches for whoever lists next.
      for (let i = 0; i < 2; i++) {
        log(`raw ListObjectsV2 of ${MANY} (${i + 1}/2)`)
        const cpu0 = await s.s3.cpuSeconds()
        const listed = await s.s3.tool<{ objects: number, seconds: number }>({ op: 'list', prefix: MANY })
        const r = { ...listed, serverCpu: await s.s3.cpuSeconds() - cpu0 }
        if (r.objects !== objects) throw new Error(`listed ${r.objects} objects, wrote ${objects}`)
        if (rawList === undefined || r.seconds < rawList.seconds) rawList = r
      }
      // Of one directory (a rate per object, in a tenth of the import's time), best of two as well.
      for (let i = 0; i < 2; i++) {
        log(`raw ListObjectsV2 + HEAD per object of ${dirKey(MANY, 0)}, ${HEAD_IN_FLIGHT} in flight (${i + 1}/2)`)
        const r = await s.s3.tool<{ objects: number, seconds: number, listWait: number }>({ op: 'listhead', prefix: dirKey(MANY, 0), inFlight: HEAD_IN_FLIGHT })
        if (listHead === undefined || r.seconds < listHead.seconds) listHead = r
      }
      info.rawList = rawList
      info.rawListHead = listHead
    }

    await s.fs.init()
    const forced = process.env.S3LINK_BENCH_IMPORT
    s.mode = forced === 'task' || forced === 'automatic' ? forced : await s.fs.hasCommand(['task', 'import']) ? 'task' : 'automatic'
    info.mode = s.mode
    // Without tasks the DRA's automatic import is the way in; with them, no polling at all.
    await s.fs.configure({ importIntervalMs: s.mode === 'task' ? 86_400_000 : AUTO_INTERVAL_MS })
    await s.fs.mount(o.daemonArgs)
    await s.fs.cli(['bucket', 'add', BUCKET, '--cloud', 'other', '--endpoint', s.s3.endpoint,
      '--access-key-id', 'S3RVER', '--secret-access-key', 'S3RVER'])
    log(`file system mounted at ${s.fs.mountpoint}; imports run as ${s.mode === 'task' ? 'import tasks' : 'automatic import'}`)

    if (wantMany) {
      try {
        await importAndList(o, s, { sImport, sImportSdk, sLs, objects, dirs, perDir, rawList, listHead, info })
      } catch (err) {
        failUnfinished(report, [sImport, sImportSdk, sLs].filter((x) => all.includes(x)), err)
      }
    }
    if (only.has('coldread')) await coldRead(o, s, { sCold, sColdFile, bigMib, farMib, info })
    await s.fs.stop()
    const warnings = s.fs.logTail(500).split('\n').filter((l) => /"level":"(warn|error)"/.test(l))
    if (warnings.length > 0) info.daemonWarnings = warnings.slice(-10)
  } catch (err) {
    failUnfinished(report, all, err)
  } finally {
    await s.fs.destroy().catch((err: unknown) => report.error('cleanup fs-import', err))
    await s.s3.stop().catch((err: unknown) => report.error('cleanup S3 server', err))
  }
}

/** Reports err for each of these sections that has neither a figure nor an error yet. */
function failUnfinished (report: Report, sections: string[], err: unknown): void {
  for (const section of sections) {
    if (!report.rows.some((r) => r.section === section) && !report.errors.some((e) => e.section === section)) report.error(section, err)
  }
}

interface ManyPlan {
  sImport: string
  sImportSdk: string
  sLs: string
  objects: number
  dirs: number
  perDir: number
  rawList?: { objects: number, seconds: number, serverCpu: number }
  listHead?: { objects: number, seconds: number, listWait: number }
  info: Record<string, unknown>
}

async function importAndList (o: ImportBenchOptions, s: Session, p: ManyPlan): Promise<void> {
  const { report, log } = o
  const before = await s.fs.memory()
  const cpuBefore = { daemon: await s.fs.cpuSeconds(), server: await s.s3.cpuSeconds() }
  let peakSampled = before.rssKiB
  const sampler = setInterval(() => {
    s.fs.memory().then((m) => { peakSampled = Math.max(peakSampled, m.rssKiB) }, () => undefined)
  }, 100)
  log(`${p.sImport}: importing into /many`)
  let imported
  try {
    imported = await s.linkAndImport('/many', MANY, p.objects)
  } finally {
    clearInterval(sampler)
  }
  const after = await s.fs.memory()
  // Includes the automatic mode's wait for the server to go idle: a pass after the import is its cost too.
  const cpu = { daemon: await s.fs.cpuSeconds() - cpuBefore.daemon, server: await s.s3.cpuSeconds() - cpuBefore.server }
  p.info.importRun = { seconds: imported.seconds, ...imported.detail, cpuSeconds: cpu, rssBeforeKiB: before.rssKiB, peakSampledKiB: peakSampled, memoryAfter: after }
  log(`${p.sImport}: ${imported.seconds.toFixed(1)} s`)

  if (o.only.has('import') && p.rawList !== undefined && p.listHead !== undefined) {
    const rate = p.objects / imported.seconds
    const how = `${s.mode === 'task' ? 'import task' : 'automatic import'} into /many`
    const perObject = (seconds: number): string => `${(seconds * 1000 / p.objects).toFixed(2)} ms`
    report.rate(p.sImport, how, 'obj/s', rate, p.rawList.objects / p.rawList.seconds, GOAL_IMPORT_RATIO,
      `${imported.seconds.toFixed(1)} s; CPU per object: daemon ${perObject(cpu.daemon)}, S3 server ${perObject(cpu.server)} (${perObject(p.rawList.serverCpu)} for the raw LIST)`)
    report.absolute(p.sImport, 'daemon peak RSS, start + import (VmHWM)', 'MB', after.hwmKiB * 1024 / MB, GOAL_RSS_MB, false,
      `RSS ${(before.rssKiB * 1024 / MB).toFixed(0)} MB before the import, ${(after.rssKiB * 1024 / MB).toFixed(0)} MB after`)
    report.rate(p.sImportSdk, `${how}, against the SDK`, 'obj/s', rate, p.listHead.objects / p.listHead.seconds, undefined,
      `the SDK took ${p.listHead.seconds.toFixed(1)} s, ${p.listHead.listWait.toFixed(1)} s of it waiting for listing pages`)
  }

  if (o.only.has('lsimport')) {
    try {
      await lsImported(o, s, p)
    } catch (err) {
      report.error(p.sLs, err)
    }
  }
  // Checked last (counting would warm what lsimport measures cold), and reported against the
  // import: a fast import that lost entries is no figure.
  const files = await sh(`find ${q(s.fs.p('many'))} -type f | wc -l`, { timeoutMs: 1_800_000 })
  const subdirs = await sh(`find ${q(s.fs.p('many'))} -mindepth 1 -type d | wc -l`)
  p.info.importedEntries = { files: Number(files.stdout.trim()), dirs: Number(subdirs.stdout.trim()) }
  if (Number(files.stdout.trim()) !== p.objects || Number(subdirs.stdout.trim()) !== p.dirs) {
    const wrong = new Error(`WRONG RESULT: /many holds ${files.stdout.trim()} files in ${subdirs.stdout.trim()} directories after the import, ` +
      `expected ${p.objects} in ${p.dirs}`)
    if (o.only.has('import')) for (const section of [p.sImport, p.sImportSdk]) report.error(section, wrong)
    if (o.only.has('lsimport')) report.error(p.sLs, wrong)
  }
}

async function lsImported (o: ImportBenchOptions, s: Session, p: ManyPlan): Promise<void> {
  const { report, log } = o
  const lsDir = dirKey('', 0).slice(0, -1)
  const findDir = dirKey('', Math.min(1, p.dirs - 1)).slice(0, -1)
  // Each listing is of a directory nobody listed before (cold), then of the same again (warm).
  const measure = async (base: string): Promise<{ ls: number, find: number, lsLines: number, findLines: number }> => {
    const ls = await sh(`ls -l ${q(path.join(base, lsDir))} | wc -l`)
    const find = await sh(`find ${q(path.join(base, findDir))} | wc -l`)
    return { ls: ls.seconds, find: find.seconds, lsLines: Number(ls.stdout.trim()), findLines: Number(find.stdout.trim()) }
  }
  log(`${p.sLs}: ls -l and find, cold then warm`)
  const s3Cold = await measure(s.fs.p('many'))
  const localBase = path.join(o.local, 'lsimport')
  for (const d of new Set([lsDir, findDir])) await sh(`python3 -c ${q(MKFILES_PY)} ${q(path.join(localBase, d))} ${p.perDir}`)
  const lCold = await measure(localBase)
  const lWarm = await measure(localBase)
  const s3Warm = await measure(s.fs.p('many'))
  for (const [side, m] of [['s3link', s3Cold], ['local', lCold]] as const) {
    // ls -l prints a "total" line; find prints the directory itself.
    if (m.lsLines !== p.perDir + 1 || m.findLines !== p.perDir + 1) throw new Error(`${side}: ls -l printed ${m.lsLines} lines, find ${m.findLines}; expected ${p.perDir + 1}`)
  }
  report.duration(p.sLs, '`ls -l` cold (right after the import; local: after creating)', s3Cold.ls, lCold.ls)
  report.duration(p.sLs, '`ls -l` warm (2nd run)', s3Warm.ls, lWarm.ls)
  report.duration(p.sLs, '`find` cold (another directory)', s3Cold.find, lCold.find)
  report.duration(p.sLs, '`find` warm (2nd run)', s3Warm.find, lWarm.find)
  await fs.promises.rm(localBase, { recursive: true, force: true })
}

/** Dirty page cache (kB): a big backlog of writeback can stall the writes of a first load. */
async function dirty (): Promise<number> {
  const meminfo = await fs.promises.readFile('/proc/meminfo', 'utf8')
  return Number(/^Dirty:\s+(\d+)/m.exec(meminfo)?.[1])
}

interface ColdPlan { sCold: string, sColdFile: string, bigMib: number, farMib: number, info: Record<string, unknown> }

async function coldRead (o: ImportBenchOptions, s: Session, p: ColdPlan): Promise<void> {
  const { report, log } = o
  try {
    log(`${p.sCold}: importing ${BIG} into /big`)
    const imported = await s.linkAndImport('/big', BIG, 3 * REPEAT)
    p.info.bigImport = { seconds: imported.seconds, ...imported.detail }
    const bytes = p.bigMib * MiB

    // Alternating: a busy moment of the machine hits one run of a side, not the whole side. The CPU
    // seconds of every process at work come with the best run of each: the machine is shared.
    const cpuNow = async (): Promise<{ daemon: number, server: number }> => ({ daemon: await s.fs.cpuSeconds(), server: await s.s3.cpuSeconds() })
    const cpuText = (c: { daemon?: number, server: number, tool?: number, dd?: number }): string =>
      Object.entries({ daemon: c.daemon, 'S3 server': c.server, 'SDK client': c.tool, dd: c.dd })
        .filter(([, v]) => v !== undefined).map(([k, v]) => `${k} ${(v as number).toFixed(1)}`).join(', ') + ' CPU-s'
    interface Side { seconds: number, cpu: string }
    const best = <T extends Side>(a: T | undefined, b: T): T => a === undefined || b.seconds < a.seconds ? b : a
    let raw: (Side & { firstByte: number }) | undefined
    let toFile: Side | undefined
    // The same GET and writes into pages already cached: tells what allocating page-cache memory
    // costs this host (a VM whose balloon takes freed memory back pays a host fault per new page).
    let overCached: Side | undefined
    let dd: Side | undefined
    for (let i = 0; i < REPEAT; i++) {
      log(`${p.sCold}: raw GetObject (${i + 1}/${REPEAT})`)
      let c0 = await cpuNow()
      const r = await s.s3.tool<{ bytes: number, seconds: number, firstByte: number, cpuSeconds: number }>({ op: 'get', key: bigKey('cold', 0) })
      if (r.bytes !== bytes) throw new Error(`raw GET returned ${r.bytes} bytes, expected ${bytes}`)
      raw = best(raw, { seconds: r.seconds, firstByte: r.firstByte, cpu: cpuText({ server: (await cpuNow()).server - c0.server, tool: r.cpuSeconds }) })
      log(`${p.sCold}: GetObject into a local file (${i + 1}/${REPEAT})`)
      c0 = await cpuNow()
      const f = await s.s3.tool<{ bytes: number, seconds: number, cpuSeconds: number }>({ op: 'get', key: bigKey('cold', 0), toFile: path.join(o.root, 'get-to-file.bin') })
      if (f.bytes !== bytes) throw new Error(`GET into a file returned ${f.bytes} bytes, expected ${bytes}`)
      toFile = best(toFile, { seconds: f.seconds, cpu: cpuText({ server: (await cpuNow()).server - c0.server, tool: f.cpuSeconds }) })
      log(`${p.sCold}: GetObject over a local file already in the page cache (${i + 1}/${REPEAT})`)
      c0 = await cpuNow()
      const fc = await s.s3.tool<{ bytes: number, seconds: number, cpuSeconds: number }>({ op: 'get', key: bigKey('cold', 0), toFile: path.join(o.root, 'get-to-file.bin'), overCached: true })
      if (fc.bytes !== bytes) throw new Error(`GET over a cached file returned ${fc.bytes} bytes, expected ${bytes}`)
      overCached = best(overCached, { seconds: fc.seconds, cpu: cpuText({ server: (await cpuNow()).server - c0.server, tool: fc.cpuSeconds }) })
      log(`${p.sCold}: dd of a released copy through the mount (${i + 1}/${REPEAT})`)
      c0 = await cpuNow()
      // bash's `times` prints the CPU of its children (dd): user, then system, on its second line.
      const d = await run('bash', ['-c', `dd if=${q(s.fs.p('big', bigName('cold', i)))} of=/dev/null bs=1M && times`], { timeoutMs: 1_800_000 })
      const c1 = await cpuNow()
      if (d.code !== 0) throw new Error(`dd failed: ${d.stderr.trim()}`)
      const copied = Number(/^(\d+) bytes/m.exec(d.stderr)?.[1])
      if (copied !== bytes) throw new Error(`dd read ${copied} bytes, expected ${bytes}: ${d.stderr.trim()}`)
      const ddCpu = [...(d.stdout.trim().split('\n')[1] ?? '').matchAll(/(\d+)m([\d.]+)s/g)].reduce((sum, m) => sum + Number(m[1]) * 60 + Number(m[2]), 0)
      const ddRun = { seconds: d.seconds, cpu: cpuText({ daemon: c1.daemon - c0.daemon, server: c1.server - c0.server, dd: ddCpu }) }
      log(`${p.sCold}: dd ${ddRun.seconds.toFixed(2)} s (${ddRun.cpu}); raw GET ${r.seconds.toFixed(2)} s, into a new file ${f.seconds.toFixed(2)} s, over a cached one ${fc.seconds.toFixed(2)} s`)
      dd = best(dd, ddRun)
    }
    if (raw === undefined || dd === undefined || toFile === undefined || overCached === undefined) throw new Error('nothing measured')
    p.info.rawGet = raw
    p.info.getToFile = toFile
    p.info.getOverCachedFile = overCached
    p.info.dd = dd
    report.rate(p.sCold, 'cold sequential read, `dd bs=1M` (loads from S3)', 'MiB/s', p.bigMib / dd.seconds, p.bigMib / raw.seconds, GOAL_COLD_READ_RATIO,
      `best of ${REPEAT}: dd ${dd.seconds.toFixed(2)} s (${dd.cpu}), raw GET ${raw.seconds.toFixed(2)} s (${raw.cpu}; its first byte after ${(raw.firstByte * 1000).toFixed(0)} ms)`)

    const runs: unknown[] = []
    const ttfb = async (name: string, mib: number): Promise<number> => {
      const dirtyKiB = await dirty()
      const r = await sh(`python3 -c ${q(TTFB_PY)} ${q(s.fs.p('big', name))} ${mib * MiB}`)
      const t = JSON.parse(r.stdout) as { total: number, open: number, read: number, bytes: number, block: number }
      runs.push({ name, mib, openMs: t.open * 1000, readMs: t.read * 1000, dirtyKiB })
      if (t.bytes !== 4096 || t.block !== mib) throw new Error(`${name} at ${mib} MiB: read ${t.bytes} bytes of MiB block ${t.block}`)
      // Its background download would share the machine with the next measurement: let it finish.
      await sh(`cat ${q(s.fs.p('big', name))} > /dev/null`, { timeoutMs: 1_800_000 })
      return t.total * 1000
    }
    const near: number[] = []
    const far: number[] = []
    for (let i = 0; i < REPEAT; i++) {
      log(`${p.sCold}: time to first byte (${i + 1}/${REPEAT})`)
      near.push(await ttfb(bigName('ttfb0', i), 0))
      far.push(await ttfb(bigName('ttfbfar', i), p.farMib))
    }
    p.info.ttfb = runs
    const all = (ms: number[]): string => `runs: ${ms.map((m) => m.toFixed(1)).join(', ')} ms`
    report.absolute(p.sCold, 'time to first byte: open + 4 KiB read at offset 0', 'ms', Math.min(...near), GOAL_TTFB_MS, true, all(near))
    report.absolute(p.sCold, `time to first byte: open + 4 KiB read at ${p.farMib} MiB`, 'ms', Math.min(...far), GOAL_TTFB_MS, true, all(far))
    report.rate(p.sColdFile, 'cold sequential read, `dd bs=1M` (loads from S3)', 'MiB/s', p.bigMib / dd.seconds, p.bigMib / toFile.seconds, undefined,
      `best of ${REPEAT}: dd ${dd.seconds.toFixed(2)} s, GET into a file ${toFile.seconds.toFixed(2)} s (${toFile.cpu}); ` +
      `the same GET over a file already in the page cache ${overCached.seconds.toFixed(2)} s (${overCached.cpu}): new page-cache memory cost this host ` +
      `${(toFile.seconds - overCached.seconds).toFixed(2)} s of the GET into a file`)
  } catch (err) {
    failUnfinished(report, [p.sCold, p.sColdFile], err)
  }
}
