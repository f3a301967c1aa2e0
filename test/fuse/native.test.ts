/**
 * The native FUSE binding (native/fuse/s3link_fuse.c + src/fuse/native.ts), on a real mount.
 *
 * The mount runs in a child process (test/fixtures/memfs-mount.js, an in-memory file system): its
 * handlers run on that process's event loop, so this process only drives the mount with ordinary
 * tools, asynchronously. Needs root, /dev/fuse, `make native` and `npx tsc` (dist/).
 */
import t, { type Test } from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import readline from 'node:readline'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { sdNotify } from '../../src/fuse/native'

const REPO = path.resolve(__dirname, '../..')
const FIXTURE = path.join(REPO, 'test/fixtures/memfs-mount.js')
const NOBODY = 65534
const TIMEOUT_MS = 500 // the fixture's request timeout

interface RunResult { code: number, stdout: string, stderr: string }

/** Runs a program asynchronously; never rejects. */
function run (file: string, args: string[], opts: { timeoutMs?: number, env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(file, args, { encoding: 'utf8', maxBuffer: 16 << 20, timeout: opts.timeoutMs ?? 60_000, env: opts.env ?? process.env }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1
      resolve({ code, stdout, stderr })
    })
  })
}
const sh = (script: string, ...args: string[]): Promise<RunResult> => run('sh', ['-c', script, 'sh', ...args])
const asNobody = (script: string, ...args: string[]): Promise<RunResult> =>
  run('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'sh', '-c', script, 'sh', ...args])

async function mounted (mnt: string): Promise<boolean> {
  const mounts = await fs.promises.readFile('/proc/mounts', 'utf8')
  return mounts.split('\n').some((line) => line.split(' ')[1] === mnt)
}

function waitExit (child: ChildProcess, ms: number): Promise<{ code: number | null, signal: NodeJS.Signals | null } | undefined> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode })
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms)
    child.once('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal }) })
  })
}

interface Memfs {
  dir: string
  mnt: string
  child: ChildProcess
  output: () => string
  p: (name: string) => string
  stats: () => Promise<Record<string, any>>
  /** SIGTERM (the fixture unmounts and exits by itself); the exit, or undefined if it hung. */
  stop: (ms?: number) => Promise<{ code: number | null, signal: NodeJS.Signals | null } | undefined>
}

/** Mounts a fresh memfs in a child process; teardown kills it and removes any mount left. */
async function startMemfs (tt: Test): Promise<Memfs> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 's3link-native-'))
  await fs.promises.chmod(dir, 0o755) // nobody must reach the mountpoint
  const mnt = path.join(dir, 'mnt')
  await fs.promises.mkdir(mnt)
  const child = spawn(process.execPath, [FIXTURE, mnt], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, MEMFS_TIMEOUT_MS: String(TIMEOUT_MS) }
  })
  let out = ''
  child.stderr!.on('data', (d: Buffer) => { out += d.toString() })
  const lines = readline.createInterface({ input: child.stdout! })
  let readyResolve: () => void
  const ready = new Promise<void>((resolve) => { readyResolve = resolve })
  lines.on('line', (line) => { out += line + '\n'; if (line === 'ready') readyResolve() })

  tt.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      if ((await waitExit(child, 10_000)) === undefined) {
        child.kill('SIGKILL')
        await waitExit(child, 5_000)
      }
    }
    if (await mounted(mnt)) await run('fusermount', ['-u', '-z', mnt])
    await fs.promises.rm(dir, { recursive: true, force: true })
  })

  const exited = waitExit(child, 15_000).then((e) => { throw new Error(`memfs did not mount (${JSON.stringify(e)}):\n${out}`) })
  await Promise.race([ready, exited])
  exited.catch(() => {})

  return {
    dir,
    mnt,
    child,
    output: () => out,
    p: (name) => path.join(mnt, name),
    async stats () {
      const r = await run('getfattr', ['--only-values', '-n', 'user.memfs.stats', mnt])
      if (r.code !== 0) throw new Error(`getfattr stats: ${r.stderr}`)
      return JSON.parse(r.stdout)
    },
    async stop (ms = 15_000) {
      child.kill('SIGTERM')
      return waitExit(child, ms)
    }
  }
}

const prerequisites = async (): Promise<string | undefined> => {
  if (process.getuid?.() !== 0) return 'needs root'
  if (!fs.existsSync('/dev/fuse')) return 'needs /dev/fuse'
  if (!fs.existsSync(path.join(REPO, 'native/build/s3link_fuse.node'))) return 'run `make native` first'
  if (!fs.existsSync(path.join(REPO, 'dist/fuse/native.js'))) return 'run `npx tsc -p tsconfig.json` first'
  for (const tool of ['fusermount', 'setfattr', 'getfattr', 'setpriv']) {
    if ((await run('sh', ['-c', `command -v ${tool}`])).code !== 0) return `needs ${tool} (apt-get install -y fuse attr util-linux)`
  }
  return undefined
}

t.test('native FUSE binding', async (t) => {
  const missing = await prerequisites()
  if (missing !== undefined) {
    // a missing build is a failure, a machine without FUSE a skip
    if (/make|tsc/.test(missing)) t.fail(missing)
    else t.skip(missing)
    return
  }

  const fsys = await startMemfs(t)
  const { p } = fsys

  t.test('mounted with the options asked for', async (t) => {
    const mounts = await fs.promises.readFile('/proc/mounts', 'utf8')
    const line = mounts.split('\n').find((l) => l.split(' ')[1] === fsys.mnt)
    t.ok(line, 'in /proc/mounts')
    t.match(line, /^memfs \S+ fuse\.memfs /, 'fsname and subtype')
    t.match(line, /default_permissions/)
    t.match(line, /allow_other/)
  })

  t.test('create gets the mode and the caller uid/gid', async (t) => {
    let r = await sh('umask 022 && : > "$1"', p('by-root'))
    t.equal(r.code, 0, r.stderr)
    r = await asNobody('umask 027 && echo hi > "$1"', p('by-nobody'))
    t.equal(r.code, 0, r.stderr)
    r = await run('stat', ['-c', '%n %a %u %g', p('by-root'), p('by-nobody')])
    t.equal(r.stdout, `${p('by-root')} 644 0 0\n${p('by-nobody')} 640 ${NOBODY} ${NOBODY}\n`)

    const creates = (await fsys.stats()).creates as Array<{ path: string, mode: number, caller: { uid: number, gid: number, pid: number } }>
    const c = creates.find((x) => x.path === '/by-nobody')
    t.ok(c, 'create was called')
    t.equal(c?.mode, 0o100640, 'mode = S_IFREG | 0666 & ~umask')
    t.equal(c?.caller.uid, NOBODY)
    t.equal(c?.caller.gid, NOBODY)
    t.ok((c?.caller.pid ?? 0) > 0, 'caller pid')

    // chown with one id left out passes -1 for it
    r = await run('chown', [':123', p('by-nobody')])
    t.equal(r.code, 0, r.stderr)
    r = await run('stat', ['-c', '%u %g', p('by-nobody')])
    t.equal(r.stdout, `${NOBODY} 123\n`)
    const chowns = (await fsys.stats()).chowns
    t.same(chowns.at(-1), { path: '/by-nobody', uid: -1, gid: 123 })

    // default_permissions: the kernel enforces the mode we return
    r = await asNobody('echo x >> "$1"', p('by-root'))
    t.not(r.code, 0, 'nobody cannot write a 0644 root file')
    t.match(r.stderr, /Permission denied/)
  })

  t.test('utimens: nanoseconds, omit and now', async (t) => {
    const f = p('times')
    t.equal((await sh(': > "$1"', f)).code, 0)
    let r = await run('touch', ['-a', '-d', '@1000000000.5', f])
    t.equal(r.code, 0, r.stderr)
    r = await run('touch', ['-m', '-d', '@1234567890.123456789', f])
    t.equal(r.code, 0, r.stderr)
    r = await run('stat', ['-c', '%.9X %.9Y', f])
    t.equal(r.stdout, '1000000000.500000000 1234567890.123456789\n', 'atime kept, mtime exact to the ns')
    let utimens = (await fsys.stats()).utimens
    t.same(utimens.at(-1), { path: '/times', atime: 'omit', mtime: '1234567890123456789' })

    // before 1970, compared with what a local file system shows for the same touch
    const local = path.join(fsys.dir, 'local-times')
    await sh(': > "$1"', local)
    for (const file of [f, local]) await run('touch', ['-m', '-d', '@-1.25', file])
    const [a, b] = await Promise.all([run('stat', ['-c', '%.9Y', f]), run('stat', ['-c', '%.9Y', local])])
    t.equal(a.stdout, b.stdout, `pre-1970 mtime shown as locally (${b.stdout.trim()})`)
    utimens = (await fsys.stats()).utimens
    t.same(utimens.at(-1), { path: '/times', atime: 'omit', mtime: '-1250000000' })

    await run('touch', [f])
    utimens = (await fsys.stats()).utimens
    t.same(utimens.at(-1), { path: '/times', atime: 'now', mtime: 'now' })
  })

  t.test('big_writes: writes larger than 4 KiB, data intact', async (t) => {
    const src = path.join(fsys.dir, 'random.bin')
    let r = await run('dd', ['if=/dev/urandom', `of=${src}`, 'bs=1M', 'count=3', 'status=none'])
    t.equal(r.code, 0, r.stderr)
    await sh('printf tail-not-aligned >> "$1"', src)
    r = await run('dd', [`if=${src}`, `of=${p('big')}`, 'bs=1M', 'status=none'])
    t.equal(r.code, 0, r.stderr)
    const { maxWrite } = await fsys.stats()
    t.ok(maxWrite > 4096, `largest write ${maxWrite} bytes`)
    t.comment(`largest write seen: ${maxWrite} bytes`)
    r = await run('cmp', [src, p('big')])
    t.equal(r.code, 0, `read back identical ${r.stdout}${r.stderr}`)
    r = await run('stat', ['-c', '%s', p('big')])
    t.equal(r.stdout.trim(), String(3 * 1024 * 1024 + 'tail-not-aligned'.length))
  })

  t.test('readdir', async (t) => {
    const r = await run('ls', ['-1a', fsys.mnt])
    const names = r.stdout.trim().split('\n')
    t.same(names.slice(0, 2), ['.', '..'])
    for (const n of ['by-root', 'by-nobody', 'times', 'big']) t.ok(names.includes(n), n)
    const r2 = await run('ls', ['-i', p('big')])
    t.match(r2.stdout, /^\d+ /, 'inode numbers from use_ino')
  })

  t.test('xattrs', async (t) => {
    const f = p('by-root')
    let r = await run('setfattr', ['-n', 'user.color', '-v', 'blue', f])
    t.equal(r.code, 0, r.stderr)
    const big = 'x'.repeat(3000)
    r = await run('setfattr', ['-n', 'user.big', '-v', big, f])
    t.equal(r.code, 0, r.stderr)
    r = await run('getfattr', ['--only-values', '-n', 'user.color', f])
    t.equal(r.stdout, 'blue')
    r = await run('getfattr', ['--only-values', '-n', 'user.big', f])
    t.equal(r.stdout, big, 'a value larger than the first probe buffer')
    r = await run('getfattr', ['-d', '--absolute-names', f])
    t.match(r.stdout, /user\.big=/)
    t.match(r.stdout, /user\.color="blue"/)
    r = await run('setfattr', ['-x', 'user.color', f])
    t.equal(r.code, 0, r.stderr)
    r = await run('getfattr', ['-n', 'user.color', f])
    t.not(r.code, 0)
    t.match(r.stderr, /No such attribute/)
  })

  t.test('an unlinked file that is still open stays readable', async (t) => {
    const f = p('unlinked')
    t.equal((await sh('printf "still here" > "$1"', f)).code, 0)
    const before = await fsys.stats()
    const r = await sh('exec 3<"$1" && rm "$1" && ls "$(dirname "$1")" && echo --- && head -c 100 <&3', f)
    t.equal(r.code, 0, r.stderr)
    const [listing, content] = r.stdout.split('---\n')
    t.notOk(listing.split('\n').includes('unlinked'), 'gone from the directory')
    t.equal(content, 'still here')
    const after = await fsys.stats()
    t.ok(after.readNullPath > before.readNullPath, 'read got path null')
  })

  t.test('an unlinked open file: fstat, write, truncate, and nothing left afterwards', async (t) => {
    const f = p('unlinked2')
    t.equal((await sh('printf abc > "$1"', f)).code, 0)
    const before = await fsys.stats()
    // cat and tail fstat their input; the kernel sends GETATTR without a handle for that
    const r = await sh([
      'exec 3<>"$1" && rm "$1"',
      'cat <&3 && echo',
      'printf defgh >&3 && stat -L -c %s /dev/fd/3',
      '"$2" -e "require(\'fs\').ftruncateSync(3, 2)" && stat -L -c %s /dev/fd/3',
      'ls -a "$(dirname "$1")"'
    ].join(' && '), f, process.execPath)
    t.equal(r.code, 0, r.stderr)
    const lines = r.stdout.split('\n')
    t.same(lines.slice(0, 3), ['abc', '8', '2'], 'read, fstat after a write, fstat after a truncate')
    t.notOk(lines.some((l) => l.includes('unlinked2') || l.includes('.fuse_hidden')), 'not listed, no hidden name shown')
    const after = await fsys.stats()
    t.ok(after.fgetattrNullPath > before.fgetattrNullPath, 'fgetattr got path null')
    t.equal(after.unlinks.filter((u: string) => u === '/unlinked2').length, 1, 'JS saw exactly one unlink, of the real name')
    t.notOk(after.seenHiddenName, 'JS never saw a .fuse_hidden name')
    t.same(after.openHandles, 0, 'every handle released')
  })

  t.test('rename over a file that is still open', async (t) => {
    await sh('printf old > "$1" && printf new > "$2"', p('target'), p('source'))
    const r = await sh('exec 3<"$1" && mv "$2" "$1" && cat "$1" && echo && cat <&3', p('target'), p('source'))
    t.equal(r.code, 0, r.stderr)
    t.equal(r.stdout, 'new\nold', 'the new file under the name, the old content through the open fd')
  })

  // The fixture's controls are xattrs set on an entry, and setting one forgets that entry's copy:
  // they go to a file of their own, so the copies under test hear of nothing.
  const control = async (t: Test, name: string, value: string): Promise<void> => {
    const r = await sh(': >> "$1" && setfattr -n "user.memfs.$2" -v "$3" "$1"', p('control'), name, value)
    t.equal(r.code, 0, r.stderr)
  }

  t.test("a directory's attributes: answered by the binding for a second, until JS says they changed", async (t) => {
    const mode = async (): Promise<string> => (await sh('stat -c %a "$1"', fsys.mnt)).stdout.trim()
    const setRoot = async (name: string, value: string): Promise<void> => { await control(t, name, value) }
    const before = (await fsys.stats()).rootGetattrs
    for (let i = 0; i < 20; i++) t.equal(await mode(), '777')
    t.ok((await fsys.stats()).rootGetattrs - before <= 2, '20 stats of the root: JS was asked at most twice')

    await setRoot('forget', 'all') // a fresh copy, so what follows falls within its second on a busy machine too
    t.equal(await mode(), '777')
    await setRoot('mode', '750') // a change the binding does not hear of
    t.equal(await mode(), '777', 'within the second, the copy answers')
    await setRoot('forget', 'root')
    t.equal(await mode(), '750', 'forgetAttrs([ino]): the next stat sees the change')

    await setRoot('mode', '755')
    await setRoot('forget', 'all')
    t.equal(await mode(), '755', 'forgetAttrs(null): the same')

    await setRoot('mode', '700')
    t.equal(await mode(), '755', 'the copy again')
    const asked = (await fsys.stats()).rootGetattrs
    await setRoot('update', 'root')
    t.equal(await mode(), '700', 'updateDirs([attr]): the copy takes the new attributes')
    t.equal((await fsys.stats()).rootGetattrs, asked, 'without asking JS')
    await setRoot('mode', '755')
    await setRoot('update', 'root')

    t.equal(await mode(), '755')
    await setRoot('mode', '775')
    t.equal((await sh(': > "$1" && mv "$1" "$2"', p('renamed-a'), p('renamed-b'))).code, 0)
    t.equal(await mode(), '755', "a file's rename leaves other directories' copies alone (the commit names the ones it changed)")

    await setRoot('mode', '777')
    await new Promise((resolve) => setTimeout(resolve, 1100))
    t.equal(await mode(), '777', 'after a second, JS is asked again anyway')
    t.equal((await sh('rm -f "$1"', p('renamed-b'))).code, 0)
  })

  t.test("a file's attributes: answered by the binding for a second while it has one link and no opener", async (t) => {
    const f = p('cached-file')
    t.equal((await sh('printf abc > "$1"', f)).code, 0)
    const stat = async (format = '%a %s'): Promise<string> => (await run('stat', ['-c', format, f])).stdout.trim()
    const asked = async (): Promise<number> => (await fsys.stats()).fileGetattrs
    const first = await stat()

    await control(t, 'forget', 'all') // a fresh copy, so what follows falls within its second on a busy machine too
    const before = await asked()
    for (let i = 0; i < 20; i++) t.equal(await stat(), first)
    const n = await asked() - before
    t.ok(n <= 4, `20 stats of a file: JS was asked at most 4 times (${n})`)

    await control(t, 'forget', 'all')
    t.equal(await stat(), first)
    await control(t, 'filemode', 'cached-file 600') // a change the binding does not hear of
    t.equal(await stat(), first, 'within the second, the copy answers')
    await control(t, 'forget', 'file:cached-file')
    t.equal(await stat(), '600 3', 'forgetAttrs([ino]) of a file: the next stat sees the change')

    // Open, the file's size and times change without JS saying so: no copy is used or kept then.
    const mode = (octal: string): string => `setfattr -n user.memfs.filemode -v "cached-file ${octal}" "$2"`
    const r = await sh([
      'stat -c %a "$1"', // the copy, kept
      'exec 3>>"$1"', mode('640'), 'stat -c %a "$1"',
      'printf de >&3', 'stat -c %s "$1"',
      mode('604'), 'stat -c %a "$1"',
      'exec 3>&-', mode('606'), 'stat -c "%a %s" "$1"'
    ].join(' && '), f, p('control'))
    t.equal(r.code, 0, r.stderr)
    t.same(r.stdout.trim().split('\n'), ['600', '640', '5', '604', '606 5'],
      'an open forgets the copy; while open, every stat asks JS; after the close, the first does')
  })

  t.test("a change through the mount is seen by the next stat, whatever JS tells the binding", async (t) => {
    // The fixture never calls forgetAttrs for these: the binding forgets the copy of a path it changed.
    const f = p('changed-file')
    const g = p('renamed-file')
    t.equal((await sh('printf abcdef > "$1"', f)).code, 0)
    const stat = async (format: string, file = f): Promise<string> => (await run('stat', ['-c', format, file])).stdout.trim()
    const step = async (what: string, cmd: string[], format: string, expected: string): Promise<void> => {
      t.ok((await stat(format)).length > 0, `${what}: a copy to forget`)
      const r = await run(cmd[0], cmd.slice(1))
      t.equal(r.code, 0, r.stderr)
      t.equal(await stat(format), expected, what)
    }
    await step('chmod', ['chmod', '611', f], '%a', '611')
    await step('chmod, answered without attributes', ['sh', '-c', 'setfattr -n user.memfs.chmodattrs -v off "$1" && chmod 612 "$2"; r=$?; setfattr -n user.memfs.chmodattrs -v on "$1"; exit $r', 'sh', p('control'), f], '%a', '612')
    await step('truncate', ['truncate', '-s', '2', f], '%s', '2')
    await step('utimens', ['touch', '-m', '-d', '@1000000000', f], '%Y', '1000000000')
    const ctime = await stat('%.9Z') // and a copy to forget
    await new Promise((resolve) => setTimeout(resolve, 20))
    t.equal((await run('setfattr', ['-n', 'user.x', '-v', '1', f])).code, 0)
    t.not(await stat('%.9Z'), ctime, 'setxattr: the new ctime')
    t.ok((await stat('%s')).length > 0, 'rename: a copy to forget')
    t.equal((await run('mv', [f, g])).code, 0)
    t.match((await run('stat', [f])).stderr, /No such file/, 'rename: the old name is gone')
    t.equal(await stat('%s', g), '2', 'rename: the new name')
    t.equal((await run('rm', [g])).code, 0)
    t.match((await run('stat', [g])).stderr, /No such file/, 'unlink: gone at once')
  })

  t.test("a change answered with the file's attributes: libfuse's GETATTR right after it is answered with them", async (t) => {
    t.equal((await sh(': > "$1"', p('after-change'))).code, 0)
    const chmodAsks = async (mode: string): Promise<number> => {
      await control(t, 'forget', 'all') // both start with no copy of the file
      const before = (await fsys.stats()).fileGetattrs
      const r = await run('chmod', [mode, p('after-change')])
      t.equal(r.code, 0, r.stderr)
      return (await fsys.stats()).fileGetattrs - before
    }
    const withAttrs = await chmodAsks('640')
    t.equal((await sh('stat -c %a "$1"', p('after-change'))).stdout.trim(), '640', 'the mode changed')
    t.equal((await run('setfattr', ['-n', 'user.memfs.chmodattrs', '-v', 'off', fsys.mnt])).code, 0)
    const without = await chmodAsks('600')
    t.equal((await sh('stat -c %a "$1"', p('after-change'))).stdout.trim(), '600', 'the mode changed')
    t.equal(without - withAttrs, 1, `one GETATTR less reaches JS (${withAttrs} with attributes, ${without} without)`)
    t.equal((await run('setfattr', ['-n', 'user.memfs.chmodattrs', '-v', 'on', fsys.mnt])).code, 0)
    t.equal((await sh('rm -f "$1"', p('after-change'))).code, 0)
  })

  t.test('bad handlers never hang or crash the daemon', async (t) => {
    const statErr = async (name: string): Promise<string> => (await run('stat', [p(name)])).stderr
    t.match(await statErr('throw'), /Input\/output error/, 'a throwing handler gives EIO')
    t.match(await statErr('garbage'), /Input\/output error/, 'an invalid attr gives EIO')
    t.match(await statErr('badErrno'), /Input\/output error/, 'a non-number errno gives EIO')
    t.match(await statErr('double'), /No such file or directory/, 'the first of two replies wins')
    const started = Date.now()
    t.match(await statErr('hang'), /Connection timed out/, 'no reply gives ETIMEDOUT')
    t.ok(Date.now() - started < TIMEOUT_MS * 10, 'within the timeout')
    t.match((await run('mkdir', [p('dir')])).stderr, /Function not implemented/, 'a missing handler gives ENOSYS')
    await new Promise((resolve) => setTimeout(resolve, TIMEOUT_MS * 3)) // the late reply of /hang arrives
    const r = await run('stat', ['-c', '%F', fsys.mnt])
    t.equal(r.stdout, 'directory\n', 'still serving')
    t.equal(fsys.child.exitCode, null, 'daemon alive')
  })

  t.test('unmount on SIGTERM leaves nothing behind', async (t) => {
    const exit = await fsys.stop()
    t.same(exit, { code: 0, signal: null }, 'exited by itself once unmounted', { output: fsys.output() })
    t.match(fsys.output(), /unmounted/)
    t.notOk(await mounted(fsys.mnt), 'not in /proc/mounts')
  })
})

t.test('unmount while a file is held open (busy: falls back to a lazy unmount)', async (t) => {
  if ((await prerequisites()) !== undefined) { t.skip('prerequisites missing'); return }
  const fsys = await startMemfs(t)
  await sh('printf held > "$1"', fsys.p('held'))
  const holder = spawn('sh', ['-c', 'exec 3<"$1" && echo open && exec sleep 60', 'sh', fsys.p('held')], { stdio: ['ignore', 'pipe', 'ignore'] })
  t.teardown(async () => { holder.kill('SIGKILL'); await waitExit(holder, 5_000) })
  await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()))

  const started = Date.now()
  const exit = await fsys.stop(20_000)
  t.same(exit, { code: 0, signal: null }, 'exited by itself', { output: fsys.output() })
  t.ok(Date.now() - started < 15_000, `took ${Date.now() - started} ms`)
  t.match(fsys.output(), /unmounting lazily/)
  t.notOk(await mounted(fsys.mnt), 'not in /proc/mounts')
  t.equal(holder.exitCode, null, 'the holder was not disturbed')
})

t.test('process.exit() while mounted leaves no dead mount behind', async (t) => {
  if ((await prerequisites()) !== undefined) { t.skip('prerequisites missing'); return }
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 's3link-native-exit-'))
  const mnt = path.join(dir, 'mnt')
  await fs.promises.mkdir(mnt)
  t.teardown(async () => {
    if (await mounted(mnt)) await run('fusermount', ['-u', '-z', mnt])
    await fs.promises.rm(dir, { recursive: true, force: true })
  })
  const script = `
    const { mountFuse } = require(${JSON.stringify(path.join(REPO, 'dist/fuse/native.js'))})
    const root = { ino: 1, mode: 0o40755, nlink: 2, uid: 0, gid: 0, rdev: 0, size: 0, blocks: 0, atimeNs: 0n, mtimeNs: 0n, ctimeNs: 0n }
    const ops = { getattr: (p, c, reply) => p === '/' ? reply(0, root) : reply(-2) }
    mountFuse(process.argv[1], ops, { options: [], timeoutMs: 1000 }).then(() => {
      console.log('mounted')
      setTimeout(() => process.exit(3), 200)
    })`
  let seenMounted = false
  const child = spawn(process.execPath, ['-e', script, mnt], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  child.stdout!.on('data', () => { void mounted(mnt).then((m) => { seenMounted ||= m }) })
  const exit = await waitExit(child, 15_000)
  t.same(exit, { code: 3, signal: null })
  t.ok(seenMounted, 'was mounted')
  t.notOk(await mounted(mnt), 'not in /proc/mounts after exit')
  t.equal((await run('stat', ['-c', '%F', mnt])).stdout, 'directory\n', 'the mountpoint is a plain directory again')
})

t.test('sdNotify', async (t) => {
  const saved = process.env.NOTIFY_SOCKET
  t.teardown(() => { if (saved === undefined) delete process.env.NOTIFY_SOCKET; else process.env.NOTIFY_SOCKET = saved })
  if (!fs.existsSync(path.join(REPO, 'native/build/s3link_fuse.node'))) { t.fail('run `make native` first'); return }

  delete process.env.NOTIFY_SOCKET
  t.equal(sdNotify('READY=1'), false, 'false without NOTIFY_SOCKET')
  process.env.NOTIFY_SOCKET = 'vsock:1:2'
  t.throws(() => sdNotify('READY=1'), /NOTIFY_SOCKET/, 'an address it cannot use throws')

  if ((await run('sh', ['-c', 'command -v python3'])).code !== 0) { t.skip('python3 needed to receive datagrams'); return }
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 's3link-notify-'))
  t.teardown(() => fs.promises.rm(dir, { recursive: true, force: true }))
  const receiver = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
addr = sys.argv[1]
s.bind('\\0' + addr[1:] if addr.startswith('@') else addr)
print('bound', flush=True)
s.settimeout(10)
print(s.recv(4096).decode(), flush=True)
`
  for (const addr of [path.join(dir, 'notify.sock'), `@s3link-test-${process.pid}`]) {
    const py = spawn('python3', ['-c', receiver, addr], { stdio: ['ignore', 'pipe', 'inherit'] })
    t.teardown(() => { py.kill('SIGKILL') })
    const lines = readline.createInterface({ input: py.stdout! })
    const it = lines[Symbol.asyncIterator]()
    t.equal((await it.next()).value, 'bound')
    process.env.NOTIFY_SOCKET = addr
    t.equal(sdNotify('READY=1\nSTATUS=mounted'), true, `sent to ${addr}`)
    const got = [(await it.next()).value, (await it.next()).value]
    t.same(got, ['READY=1', 'STATUS=mounted'], `received on ${addr}`)
    await waitExit(py, 5_000)
  }
})

t.test('the handle functions refuse what is not a mount handle, with EINVAL and their usage', async (t) => {
  const addon = require(path.join(REPO, 'native/build/s3link_fuse.node')) as Record<string, (...args: unknown[]) => unknown>
  const calls: Array<[string, unknown[]]> = [
    ['unmount', [{}]], ['forgetAttrs', [{}, null]], ['updateDirs', [{}, []]], ['directWrites', [{}, 1, 2]], ['directReads', [{}, 1, 2, 3]],
    ['openBacking', [{}, 0]], ['closeBacking', [{}, 1]]
  ]
  for (const [name, args] of calls) {
    t.throws(() => addon[name](...args), { code: 'EINVAL', message: name === 'unmount' ? /not a mount handle/ : new RegExp(`^${name}\\(handle`) }, name)
  }
})
