// The CLI's answers to bad input: a clear message on stderr, a non-zero exit, nothing changed.
import t from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import { cli, startFs, isMounted, run } from '../fixtures/harness'

t.test('init creates a file system with an fs- id and 0600 credentials', async (t) => {
  const tfs = await startFs(t, { mount: false })
  const creds = path.join(tfs.stateDir, 'credentials.json')
  t.equal((await fs.promises.stat(creds)).mode & 0o777, 0o600)
  const again = await cli(['init', tfs.name, '--mountpoint', tfs.mountpoint, '--state-dir', tfs.stateDir, '--config', tfs.configPath])
  t.not(again.code, 0)
  t.match(again.stderr, /already exists/)
  const json = await cli(['init', 'second', '--mountpoint', path.join(tfs.root, 'm2'), '--state-dir', path.join(tfs.root, 's2'),
    '--config', path.join(tfs.root, 's2.yaml'), '--json'])
  t.equal(json.code, 0, json.stderr)
  t.match(JSON.parse(json.stdout), { id: /^fs-[0-9a-f]{17}$/, name: 'second' })
})

t.test('init refuses bad names and a missing --mountpoint, writing nothing', async (t) => {
  const root = await fs.promises.mkdtemp('/tmp/s3link-cli-')
  t.teardown(() => fs.promises.rm(root, { recursive: true, force: true }))
  const bad = await cli(['init', 'Bad Name!', '--mountpoint', `${root}/m`, '--state-dir', `${root}/s`, '--config', `${root}/c.yaml`])
  t.equal(bad.code, 1)
  t.match(bad.stderr, /invalid file system name/)
  const noMp = await cli(['init', 'ok', '--state-dir', `${root}/s`, '--config', `${root}/c.yaml`])
  t.not(noMp.code, 0)
  t.match(noMp.stderr, /--mountpoint/)
  t.same(await fs.promises.readdir(root), [], 'nothing was created')
})

t.test('mount: unknown file system, malformed config, missing or busy mountpoint, locked state', async (t) => {
  const tfs = await startFs(t, { mount: false })
  const unknown = await cli(['mount', 'nosuchfs', '--config', path.join(tfs.root, 'nosuch.yaml')])
  t.equal(unknown.code, 1)
  t.match(unknown.stderr, /unknown file system/)

  const original = await fs.promises.readFile(tfs.configPath, 'utf8')
  await fs.promises.writeFile(tfs.configPath, original.replace(/logLevel: \w+/, 'logLevel: loud') + 'bogus: 1\n')
  const malformed = await cli(['mount', tfs.name, '--config', tfs.configPath])
  t.equal(malformed.code, 1)
  t.match(malformed.stderr, /logLevel/)
  t.match(malformed.stderr, /bogus/)
  await fs.promises.writeFile(tfs.configPath, 'name: [unclosed\n')
  t.match((await cli(['mount', tfs.name, '--config', tfs.configPath])).stderr, /not valid YAML/)
  await fs.promises.writeFile(tfs.configPath, original)

  await fs.promises.rmdir(tfs.mountpoint)
  const missing = await cli(['mount', tfs.name, '--config', tfs.configPath])
  t.equal(missing.code, 1)
  t.match(missing.stderr, /mountpoint .* does not exist/)
  await fs.promises.mkdir(tfs.mountpoint)

  await tfs.mount()
  const locked = await cli(['mount', tfs.name, '--config', tfs.configPath])
  t.equal(locked.code, 1)
  t.match(locked.stderr, /in use by another s3link daemon/)
  t.ok(await isMounted(tfs.mountpoint), 'the running daemon is unaffected')

  // Another file system pointed at the same, busy mountpoint.
  const other = path.join(tfs.root, 'other.yaml')
  t.equal((await cli(['init', 'other', '--mountpoint', tfs.mountpoint, '--state-dir', path.join(tfs.root, 'other'), '--config', other])).code, 0)
  const busy = await cli(['mount', 'other', '--config', other])
  t.equal(busy.code, 1)
  t.match(busy.stderr, /busy/)
  t.equal((await tfs.sh('touch still-works')).code, 0)
})

t.test('mount --background, status and unmount', async (t) => {
  const tfs = await startFs(t, { mount: false })
  const bg = await cli(['mount', tfs.name, '--config', tfs.configPath, '--background'])
  t.equal(bg.code, 0, bg.stderr)
  t.teardown(async () => { await cli(['unmount', tfs.name, '--config', tfs.configPath]) })
  t.ok(await isMounted(tfs.mountpoint))
  const st = JSON.parse((await cli(['status', tfs.name, '--config', tfs.configPath, '--json'])).stdout)
  t.match(st, { name: tfs.name, mounted: true, pid: Number })
  t.equal((await cli(['unmount', tfs.name, '--config', tfs.configPath])).code, 0)
  t.notOk(await isMounted(tfs.mountpoint))
  t.match((await cli(['unmount', tfs.name, '--config', tfs.configPath])).stderr, /not running/)
})

t.test('unknown commands and options are usage errors', async (t) => {
  const r = await cli(['frobnicate'])
  t.not(r.code, 0)
  t.match(r.stderr, /unknown command/)
  const help = await run(process.execPath, [path.resolve(__dirname, '../../bin/s3link'), '--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /init.*mount.*unmount.*status.*demo/s)
})

t.test('an unmount from outside (umount, as at shutdown) stops the daemon cleanly', async (t) => {
  const tfs = await startFs(t)
  const exited = new Promise<number | null>((resolve) => tfs.daemon?.once('exit', resolve))
  t.equal((await run('umount', [tfs.mountpoint])).code, 0)
  t.equal(await exited, 0, 'the daemon exits 0')
  t.match(tfs.readLog(), /unmounted from outside/)
})
