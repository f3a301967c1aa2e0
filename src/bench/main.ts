/**
 * `make bench` (node dist/bench/main.js): s3link against a reference measured in the same run —
 * local disk, or for the import sections the same S3 server driven directly by the SDK.
 *
 * Everything lives under one temp root (default os.tmpdir(), /tmp): `local/` is the local-disk
 * side, `fs-*` the s3link file systems (state dir, mountpoint, config, daemon log) — all on the same
 * file system, so both sides write to the same disk. All measured file I/O runs in child processes
 * (dd, python3, tar, grep, find, ls); this process only starts, times and stops them.
 *
 *   1. sequential: `dd if=/dev/zero of=F bs=1M count=1024 conv=fsync` (same command on both), then a
 *      re-read `dd if=F of=/dev/null bs=1M` twice — the second, warm one is timed.
 *   2. small files: a python3 child creates+closes N empty files, stats them, removes them.
 *   3. source tree: `tar -xf typescript-5.9.3.tar` (the npm tarball, decompressed beforehand so the
 *      figure is file system work, not gunzip), `grep -rc function` twice, `rm -rf`; then `rsync -a`
 *      of the same tree from local disk (a temporary file and a rename per file, times and modes
 *      set after: the most requests per file of the tools).
 *   4. 1M files: the LevelDB of a stopped file system is filled directly (populate.ts), then
 *      start-up (spawn → ready) and the daemon's RSS (VmRSS) after mount, `ls`, `ls -l`, `find` of
 *      50 dirs, `du -s` of 150 other dirs (stats 150k inodes, more than the inode cache holds),
 *      `find .` of the whole tree, and after a restart.
 *   5. import (import.ts): an embedded S3 server (s3rver) holding 100,000 objects and a 1 GiB one;
 *      import rate against a raw ListObjectsV2, peak RSS (`import`); `ls -l` and `find` of an
 *      imported 10,000-entry directory against local disk (`lsimport`); cold `dd` of a released
 *      file against a raw GetObject, and time to first byte at offsets 0 and 900 MiB (`coldread`).
 *   6. export (export.ts): a DRA with automatic export on its own embedded S3 server: a 1 GiB file
 *      from close until its object is complete, against lib-storage's Upload of the same file
 *      (`exportbig`); 1,000 files of 4 KiB until all are in S3, against 4 KiB PUTs 16 in flight
 *      (`exportsmall`); dd into the DRA while a backlog of small-file exports drains, against the
 *      same dd into a directory outside any DRA (`exportload`). `export` selects all three.
 *   Sections 1-3 run REPEAT times per side, alternating local and s3link; the best figure is kept.
 *
 * Environment:
 *   S3LINK_BENCH_SCALE=0.1     scale every size (1 GiB, 10,000 files, 1,000,000 files, 100,000 objects) by this
 *   S3LINK_BENCH_ONLY=seq,small,untar,many,import,lsimport,coldread,export   run only these sections
 *                              (export = exportbig,exportsmall,exportload)
 *   S3LINK_BENCH_IMPORT=task|automatic   how section 5 imports (default: an import task if the CLI has one)
 *   S3LINK_BENCH_DIR=DIR       where the temp root goes (default os.tmpdir())
 *   S3LINK_BENCH_JSON=FILE     where the JSON results go (default $TMPDIR/s3link-bench-<time>.json)
 *   S3LINK_BENCH_PROFILE=DIR   run the daemons with --cpu-prof, profiles written to DIR (kept)
 *   S3LINK_BENCH_REPEAT=2      sections 1-3, the cold read and the export sections run this many times per side, alternating; best kept
 *   S3LINK_BENCH_DU_DIRS=150   how many 1000-file dirs `du -s` stats in section 4 (0: skip)
 *   S3LINK_BENCH_FULL_FIND=0   skip `find . | wc -l` over the whole 1M-file tree
 *   S3LINK_BENCH_DAEMON_ARGS='--trace-gc'   extra node options for the daemons (diagnosis)
 *   S3LINK_BENCH_KEEP_LOGS=DIR copy the daemons' logs there before deleting them
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { run, sh, onCleanup, cleanupAll, installSignalHandlers, mountsUnder, REPEAT, q } from './proc'
import { BenchFs, REPO } from './daemon'
import { Report } from './report'
import { dirName } from './populate'
import { importBenchmarks } from './import'
import { exportBenchmarks } from './export'

const SCALE = Number(process.env.S3LINK_BENCH_SCALE ?? '1')
const ONLY = new Set((process.env.S3LINK_BENCH_ONLY ?? 'seq,small,untar,many,import,lsimport,coldread,export').split(',').map((s) => s.trim()))
const PROFILE_DIR = process.env.S3LINK_BENCH_PROFILE
const EXTRA_DAEMON_ARGS = (process.env.S3LINK_BENCH_DAEMON_ARGS ?? '').split(' ').filter((a) => a !== '')
const FULL_FIND = process.env.S3LINK_BENCH_FULL_FIND !== '0'

const SEQ_MIB = Math.max(1, Math.round(1024 * SCALE))
const SMALL_FILES = Math.max(10, Math.round(10_000 * SCALE))
const MANY_FILES = Math.max(1000, Math.round(1_000_000 * SCALE))
const FILES_PER_DIR = 1000
const MANY_DIRS = Math.ceil(MANY_FILES / FILES_PER_DIR)
const FIND_DIRS = Math.min(50, MANY_DIRS)
/** `du` stats every file: 150 dirs = 150,000 inodes, more than the daemon's inode cache (100,000). */
const DU_DIRS = Math.min(Number(process.env.S3LINK_BENCH_DU_DIRS ?? 150), MANY_DIRS)
const TS_VERSION = '5.9.3'

const GOAL_SEQ_RATIO = 0.5
const GOAL_RSS_MB = 300
const GOAL_STARTUP_S = 5

const MB = 1e6

const daemonArgs = (): string[] => [
  ...(PROFILE_DIR === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${path.resolve(PROFILE_DIR)}`]),
  ...EXTRA_DAEMON_ARGS
]


function log (message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`)
}

// ---- 1. sequential write and warm re-read ----

const DD_WRITE = (file: string, mib: number): string[] => ['if=/dev/zero', `of=${file}`, 'bs=1M', `count=${mib}`, 'conv=fsync']
const DD_READ = (file: string): string[] => [`if=${file}`, 'of=/dev/null', 'bs=1M']

async function dd (args: string[]): Promise<number> {
  const r = await run('dd', args)
  if (r.code !== 0) throw new Error(`dd ${args.join(' ')} failed: ${r.stderr.trim()}`)
  return r.seconds
}

async function sequential (dir: string): Promise<{ write: number, read1: number, read: number }> {
  const file = path.join(dir, 'seq.bin')
  const write = await dd(DD_WRITE(file, SEQ_MIB))
  const read1 = await dd(DD_READ(file)) // the warm-up read
  const read = await dd(DD_READ(file))
  await settle(`rm -f ${q(file)}`)
  return { write: SEQ_MIB / write, read1: SEQ_MIB / read1, read: SEQ_MIB / read }
}

/**
 * Runs command, then `sync` and a short pause: deleting a 1 GiB file on ext4 mounted with
 * `discard` keeps the journal busy for a while, which would slow down whatever is measured next.
 */
async function settle (command = 'true'): Promise<void> {
  await sh(`${command}; sync`)
  await new Promise((resolve) => setTimeout(resolve, 2000))
}

/** Runs measure(local) and measure(s3link) REPEAT times, alternating; keeps the best of each field. */
async function bestOf<T extends Record<string, number>> (label: string, better: 'max' | 'min', local: string, mnt: string,
  measure: (dir: string) => Promise<T>): Promise<{ l: T, s: T }> {
  const keep = (a: T | undefined, b: T): T => {
    if (a === undefined) return b
    const out = { ...a }
    for (const k of Object.keys(b) as Array<keyof T>) {
      const x = a[k]
      const y = b[k]
      out[k] = (better === 'max' ? Math.max(x, y) : Math.min(x, y)) as T[keyof T]
    }
    return out
  }
  let l: T | undefined
  let s: T | undefined
  for (let i = 1; i <= REPEAT; i++) {
    log(`${label}: local disk (${i}/${REPEAT})`)
    l = keep(l, await measure(local))
    log(`${label}: s3link (${i}/${REPEAT})`)
    s = keep(s, await measure(mnt))
  }
  return { l: l as T, s: s as T }
}

// ---- 2. small files ----

const SMALL_FILES_PY = `
import os, sys, time, json
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d, exist_ok=True)
names = [os.path.join(d, 'f%06d' % i) for i in range(n)]
flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC
t0 = time.perf_counter()
for p in names:
    os.close(os.open(p, flags, 0o644))
t1 = time.perf_counter()
for p in names:
    os.stat(p)
t2 = time.perf_counter()
for p in names:
    os.unlink(p)
t3 = time.perf_counter()
os.rmdir(d)
print(json.dumps({'create': t1 - t0, 'stat': t2 - t1, 'remove': t3 - t2}))
`

async function smallFiles (dir: string): Promise<{ create: number, stat: number, remove: number }> {
  const r = await run('python3', ['-c', SMALL_FILES_PY, path.join(dir, 'small'), String(SMALL_FILES)])
  if (r.code !== 0) throw new Error(`small-file script failed: ${r.stderr.trim()}`)
  const t = JSON.parse(r.stdout) as { create: number, stat: number, remove: number }
  return { create: SMALL_FILES / t.create, stat: SMALL_FILES / t.stat, remove: SMALL_FILES / t.remove }
}

// ---- 3. source tree ----

/** The typescript npm tarball, decompressed: from the registry, else node_modules/typescript. */
async function sourceTarball (dlDir: string): Promise<{ tar: string, files: number, bytes: number, origin: string }> {
  await fs.promises.mkdir(dlDir, { recursive: true })
  let origin = `npm pack typescript@${TS_VERSION}`
  const pack = await run('npm', ['pack', `typescript@${TS_VERSION}`, '--pack-destination', dlDir, '--silent'], { cwd: dlDir, timeoutMs: 180_000 })
  let tgz = path.join(dlDir, `typescript-${TS_VERSION}.tgz`)
  if (pack.code !== 0 || !fs.existsSync(tgz)) {
    log(`npm pack failed (${pack.stderr.trim().split('\n').pop() ?? ''}); tarring node_modules/typescript instead`)
    origin = 'tar of node_modules/typescript'
    tgz = path.join(dlDir, 'typescript.tgz')
    await sh(`tar -czf ${q(tgz)} -C ${q(path.join(REPO, 'node_modules'))} typescript`)
  }
  const tar = path.join(dlDir, 'typescript.tar')
  await sh(`gzip -dc ${q(tgz)} > ${q(tar)}`)
  const list = await sh(`tar -tvf ${q(tar)}`)
  let files = 0
  let bytes = 0
  for (const line of list.stdout.split('\n')) {
    if (!line.startsWith('-')) continue
    files++
    bytes += Number(line.split(/\s+/)[2]) || 0
  }
  return { tar, files, bytes, origin }
}

async function sourceTree (dir: string, tar: string, staged: string): Promise<{ untar: number, grep1: number, grep2: number, rm: number, rsync: number, matches: number }> {
  const dest = path.join(dir, 'src-tree')
  await sh(`mkdir -p ${q(dest)}`)
  const untar = (await sh(`tar -xf ${q(tar)} -C ${q(dest)}`)).seconds
  // Not to /dev/null: GNU grep stops at the first match then. -c reads every file to its end.
  const g1 = await sh(`grep -rc function ${q(dest)} | awk -F: '{ n += $NF } END { print n }'`)
  const g2 = await sh(`grep -rc function ${q(dest)} | awk -F: '{ n += $NF } END { print n }'`)
  const rm = (await sh(`rm -rf ${q(dest)}`)).seconds
  if (g1.stdout.trim() !== g2.stdout.trim()) throw new Error(`grep counted ${g1.stdout.trim()} then ${g2.stdout.trim()} matches`)
  const copy = path.join(dir, 'rsync-tree')
  const rsync = (await sh(`rsync -a ${q(staged + '/')} ${q(copy + '/')}`)).seconds
  await sh(`rm -rf ${q(copy)}`)
  return { untar, grep1: g1.seconds, grep2: g2.seconds, rm, rsync, matches: Number(g1.stdout.trim()) }
}

// ---- the run ----

async function main (): Promise<void> {
  installSignalHandlers()
  const base = process.env.S3LINK_BENCH_DIR ?? os.tmpdir()
  const root = await fs.promises.mkdtemp(path.join(base, 's3link-bench-'))
  onCleanup(async () => {
    const left = await mountsUnder(root)
    if (left.length > 0) throw new Error(`not deleting ${root}: still mounted at ${left.join(', ')}`)
    await fs.promises.rm(root, { recursive: true, force: true, maxRetries: 3 })
  })
  const local = path.join(root, 'local')
  await fs.promises.mkdir(local)
  const jsonPath = process.env.S3LINK_BENCH_JSON ??
    path.join(os.tmpdir(), `s3link-bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  if (PROFILE_DIR !== undefined) await fs.promises.mkdir(PROFILE_DIR, { recursive: true })

  const report = new Report()
  const df = await sh(`df -P ${q(root)} | tail -1`)
  Object.assign(report.info, {
    date: new Date().toISOString(),
    host: os.hostname(),
    kernel: os.release(),
    node: process.version,
    cpus: os.cpus().length,
    loadavgAtStart: os.loadavg(),
    scale: SCALE,
    tempRoot: root,
    disk: df.stdout.trim().split(/\s+/)[0],
    ddWrite: `dd if=/dev/zero of=F bs=1M count=${SEQ_MIB} conv=fsync`,
    ddRead: 'dd if=F of=/dev/null bs=1M (run twice, the second timed)',
    smallFiles: SMALL_FILES,
    manyFiles: { dirs: MANY_DIRS, filesPerDir: FILES_PER_DIR, total: MANY_DIRS * FILES_PER_DIR, findDirs: FIND_DIRS }
  })
  const otherFuse = (await fs.promises.readFile('/proc/mounts', 'utf8')).split('\n').filter((l) => / fuse[.\w]* /.test(l)).length
  report.info.otherFuseMountsAtStart = otherFuse
  if (otherFuse > 0 || os.loadavg()[0] > 1) {
    report.info.warning = `machine not idle at start: load average ${os.loadavg()[0].toFixed(2)}, ${otherFuse} other FUSE mount(s); figures may be noisy`
    log(String(report.info.warning))
  }
  log(`temp root ${root} on ${String(report.info.disk)} (local disk side: ${local}); scale ${SCALE}`)
  const started = Date.now()

  // Sections 1-3 share one s3link file system.
  if (ONLY.has('seq') || ONLY.has('small') || ONLY.has('untar')) {
    const s3 = new BenchFs(path.join(root, 'fs-main'), 'benchmain')
    try {
      await s3.init()
      const startup = await s3.mount(daemonArgs())
      report.absolute('start-up', 'start-up, empty file system (spawn → ready)', 's', startup)
      const mnt = s3.mountpoint

      if (ONLY.has('seq')) {
        const section = `sequential ${SEQ_MIB} MiB (dd bs=1M)`
        try {
          const { l, s } = await bestOf(section, 'max', local, mnt, sequential)
          report.rate(section, 'write, conv=fsync, then close', 'MiB/s', s.write, l.write, GOAL_SEQ_RATIO)
          report.rate(section, '1st re-read (after close)', 'MiB/s', s.read1, l.read1)
          report.rate(section, 'warm re-read (2nd read)', 'MiB/s', s.read, l.read, GOAL_SEQ_RATIO)
        } catch (err) { report.error(section, err) }
      }

      if (ONLY.has('small')) {
        const section = `${SMALL_FILES.toLocaleString('en-US')} empty files (python3)`
        try {
          const { l, s } = await bestOf(section, 'max', local, mnt, smallFiles)
          report.rate(section, 'create+close', 'ops/s', s.create, l.create)
          report.rate(section, 'stat', 'ops/s', s.stat, l.stat)
          report.rate(section, 'remove', 'ops/s', s.remove, l.remove)
        } catch (err) { report.error(section, err) }
      }

      if (ONLY.has('untar')) {
        let section = `typescript@${TS_VERSION} source tree`
        try {
          log(`${section}: fetching the tarball`)
          const src = await sourceTarball(path.join(root, 'dl'))
          section = `typescript@${TS_VERSION} tree (${src.files.toLocaleString('en-US')} files, ${(src.bytes / MB).toFixed(0)} MB)`
          report.info.sourceTree = { origin: src.origin, files: src.files, bytes: src.bytes }
          const staged = path.join(root, 'dl', 'staged-tree') // rsync's source, on local disk
          await sh(`mkdir -p ${q(staged)} && tar -xf ${q(src.tar)} -C ${q(staged)}`)
          const { l, s } = await bestOf(section, 'min', local, mnt, (dir) => sourceTree(dir, src.tar, staged))
          if (l.matches !== s.matches) throw new Error(`grep counted ${s.matches} matches on s3link, ${l.matches} on local disk`)
          report.duration(section, 'tar -xf (uncompressed .tar)', s.untar, l.untar)
          report.duration(section, 'grep -rc function (1st, right after untar)', s.grep1, l.grep1)
          report.duration(section, 'grep -rc function (2nd)', s.grep2, l.grep2)
          report.duration(section, 'rm -rf', s.rm, l.rm)
          report.duration(section, 'rsync -a of the tree from local disk', s.rsync, l.rsync)
        } catch (err) { report.error(section, err) }
      }
      await s3.stop()
      const tail = s3.logTail(200).split('\n').filter((l) => /"level":"(warn|error)"/.test(l))
      if (tail.length > 0) report.info.mainDaemonWarnings = tail.slice(-10)
    } catch (err) {
      report.error('s3link file system for sections 1-3', err)
    } finally {
      await s3.destroy().catch((err: unknown) => report.error('cleanup fs-main', err))
    }
  }

  if (ONLY.has('many')) {
    const total = MANY_DIRS * FILES_PER_DIR
    const section = `${total.toLocaleString('en-US')} files (${MANY_DIRS} dirs × ${FILES_PER_DIR})`
    const big = new BenchFs(path.join(root, 'fs-many'), 'benchmany')
    try {
      await big.init()
      log(`${section}: populating the database`)
      const pop = await run(process.execPath, [path.join(__dirname, 'populate.js'), path.join(big.stateDir, 'db'), String(MANY_DIRS), String(FILES_PER_DIR)])
      if (pop.code !== 0) throw new Error(`populate failed: ${pop.stderr.trim()}`)
      const popResult = JSON.parse(pop.stdout) as { seconds: number, inodes: number }
      const dbSize = await sh(`du -sb ${q(path.join(big.stateDir, 'db'))} | cut -f1`)
      report.info.populate = { ...popResult, dbBytes: Number(dbSize.stdout.trim()) }
      log(`${section}: ${popResult.inodes} inodes written in ${popResult.seconds.toFixed(1)} s; mounting`)

      const memory: Record<string, unknown> = {}
      report.info.daemonMemory = memory
      const mb = async (when: string): Promise<number> => {
        const m = await big.memory()
        memory[when] = m
        return m.rssKiB * 1024 / MB
      }
      const startup1 = await big.mount(daemonArgs())
      report.absolute(section, 'start-up, 1st mount after populating', 's', startup1, GOAL_STARTUP_S, true)
      report.absolute(section, 'RSS after mount', 'MB', await mb('after mount'), GOAL_RSS_MB)

      const mid = dirName(Math.floor(MANY_DIRS / 2))
      const ls = await sh(`ls ${q(big.p(mid))} | wc -l`)
      report.absolute(section, `RSS after \`ls ${mid}\` (${ls.stdout.trim()} names)`, 'MB', await mb('after ls'), GOAL_RSS_MB)
      const lsl = await sh(`ls -l ${q(big.p(mid))} | wc -l`)
      report.absolute(section, `RSS after \`ls -l ${mid}\``, 'MB', await mb('after ls -l'), GOAL_RSS_MB)
      report.absolute(section, `\`ls -l ${mid}\` time (${FILES_PER_DIR} entries)`, 's', lsl.seconds)

      const findArgs = Array.from({ length: FIND_DIRS }, (_, i) => dirName(i)).join(' ')
      const find = await sh(`find ${findArgs} | wc -l`, { cwd: big.mountpoint })
      report.absolute(section, `RSS after \`find\` of ${FIND_DIRS} dirs (${Number(find.stdout.trim()).toLocaleString('en-US')} entries)`, 'MB', await mb('after find subset'), GOAL_RSS_MB)
      report.absolute(section, `\`find ${FIND_DIRS} dirs | wc -l\` time`, 's', find.seconds)

      if (DU_DIRS > 0) {
        log(`${section}: du -s over ${DU_DIRS} dirs (stats every file)`)
        const duArgs = Array.from({ length: DU_DIRS }, (_, i) => dirName(MANY_DIRS - 1 - i)).join(' ')
        const du = await sh(`du -s ${duArgs} | wc -l`, { cwd: big.mountpoint, timeoutMs: 1_800_000 })
        const stats = DU_DIRS * (FILES_PER_DIR + 1)
        report.absolute(section, `RSS after \`du -s\` of ${DU_DIRS} other dirs (stats ${stats.toLocaleString('en-US')} inodes)`, 'MB', await mb('after du'), GOAL_RSS_MB)
        report.absolute(section, `\`du -s\` of ${DU_DIRS} dirs: stat rate`, 'stat/s', stats / du.seconds, undefined, false,
          `${du.seconds.toFixed(1)} s for ${stats.toLocaleString('en-US')} inodes`)
      }

      if (FULL_FIND) {
        log(`${section}: find over the whole tree`)
        const all = await sh('find . | wc -l', { cwd: big.mountpoint, timeoutMs: 1_800_000 })
        report.absolute(section, `RSS after \`find .\` (${Number(all.stdout.trim()).toLocaleString('en-US')} entries)`, 'MB', await mb('after find all'), GOAL_RSS_MB)
        report.absolute(section, '`find . | wc -l` time', 's', all.seconds)
      }
      const mem = await big.memory()
      report.absolute(section, 'peak RSS so far (VmHWM)', 'MB', mem.hwmKiB * 1024 / MB, GOAL_RSS_MB)

      log(`${section}: restarting`)
      await big.stop()
      const startup2 = await big.mount(daemonArgs())
      report.absolute(section, 'start-up, restart', 's', startup2, GOAL_STARTUP_S, true)
      report.absolute(section, 'RSS after restart', 'MB', await mb('after restart'), GOAL_RSS_MB)
      await big.stop()
    } catch (err) {
      report.error(section, err)
    } finally {
      await big.destroy().catch((err: unknown) => report.error('cleanup fs-many', err))
    }
  }

  if (ONLY.has('import') || ONLY.has('lsimport') || ONLY.has('coldread')) {
    await importBenchmarks({ root, local, report, only: ONLY, scale: SCALE, daemonArgs: daemonArgs(), log })
  }

  if (['export', 'exportbig', 'exportsmall', 'exportload'].some((name) => ONLY.has(name))) {
    await exportBenchmarks({ root, local, report, only: ONLY, scale: SCALE, daemonArgs: daemonArgs(), log })
  }

  report.info.totalSeconds = (Date.now() - started) / 1000
  report.info.loadavgAtEnd = os.loadavg()
  await cleanupAll()

  const left = (await mountsUnder(root)).concat(await mountsUnder(path.resolve(root)))
  const leftover = fs.existsSync(root)
  report.info.cleanup = { mountsLeft: left, tempRootLeft: leftover }

  const text = report.table()
  process.stdout.write(`\ns3link benchmark — ${String(report.info.date)}, scale ${SCALE}, ${os.cpus().length} CPUs, ` +
    `temp root on ${String(report.info.disk)}\n` +
    `ratio = s3link relative to the reference (local disk unless the section names another), higher is better ` +
    `(rates: s3link/reference; times: reference/s3link)\n` +
    `sequential: ${String(report.info.ddWrite)}; ${String(report.info.ddRead)}\n` +
    (REPEAT > 1 ? `sections 1-3: best of ${REPEAT} alternating runs per side (local, s3link, local, s3link…)\n` : '') +
    (report.info.warning !== undefined ? `WARNING: ${String(report.info.warning)}\n` : '') +
    `\n${text}\n\n`)
  await fs.promises.writeFile(jsonPath, JSON.stringify({ info: report.info, rows: report.rows, errors: report.errors }, null, 2) + '\n')
  process.stdout.write(`results (JSON): ${jsonPath}\n`)
  process.stdout.write(left.length === 0 ? 'cleanup: no FUSE mount left behind (/proc/mounts checked), temp root removed\n'
    : `cleanup: MOUNTS LEFT BEHIND: ${left.join(', ')}\n`)
  if (leftover) process.stdout.write(`cleanup: temp root ${root} could not be removed\n`)
  process.exitCode = report.errors.length > 0 || left.length > 0 ? 1 : 0
}

main().catch(async (err: unknown) => {
  process.stderr.write(`benchmark failed: ${(err as Error).stack ?? String(err)}\n`)
  await cleanupAll()
  process.exit(1)
})
