// Operations files: the systemd unit template, the mount(8) helper and `make install`.
//
// Nothing here needs FUSE or a running systemd: the unit is checked offline by systemd-analyze, the
// helper runs against a fake `s3link` that records its argv, and the install goes into a DESTDIR
// from a throw-away copy of the source tree, so the test neither builds nor touches the repository.

import t, { type Test } from 'tap'
import { spawnSync, type SpawnSyncReturns } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

const repo = path.resolve(__dirname, '..')
const unitFile = path.join(repo, 'systemd', 's3link@.service')
const helperFile = path.join(repo, 'systemd', 'mount.s3link')

// Every test gets its own temp dir, removed when it ends, pass or fail.
function tempDir(t: Test, label: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `s3link-${label}-`))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

type Run = SpawnSyncReturns<string>

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Run {
  return spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000, ...opts })
}

function mode(file: string): string {
  return (fs.lstatSync(file).mode & 0o7777).toString(8).padStart(4, '0')
}

// Directives of one section, in order; repeated keys accumulate (Environment=, DeviceAllow=).
function unitSection(text: string, section: string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  let current = ''
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const header = /^\[(.+)\]$/.exec(line)
    if (header) {
      current = header[1]
      continue
    }
    if (current !== section) continue
    const eq = line.indexOf('=')
    const key = line.slice(0, eq).trim()
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1).trim()])
  }
  return out
}

t.test('unit template', async t => {
  const text = fs.readFileSync(unitFile, 'utf8')

  t.test('systemd-analyze verify is clean', async t => {
    const which = run('sh', ['-c', 'command -v systemd-analyze'])
    t.equal(which.status, 0, 'systemd-analyze is installed (Debian: apt-get install systemd)')
    if (which.status !== 0) return

    // verify reports a missing ExecStart binary, so check a copy that runs the repo's launcher;
    // everything else is the shipped file, byte for byte.
    const launcher = path.join(repo, 'bin', 's3link')
    t.notMatch(launcher, /\s/, 'repository path needs no quoting in ExecStart=')
    const copy = text.replace(/^ExecStart=\/usr\/local\/bin\/s3link /m, `ExecStart=${launcher} `)
    t.not(copy, text, 'ExecStart was rewritten for the check')

    const dir = tempDir(t, 'unit')
    const file = path.join(dir, 's3link@.service')
    fs.writeFileSync(file, copy)
    // --man=no: verify would otherwise run man(1) for Documentation= entries.
    const res = run('systemd-analyze', ['verify', '--man=no', file])
    t.equal(res.status, 0, 'exit status 0')
    t.equal(res.stderr, '', 'no warnings')
    t.equal(res.stdout, '', 'no output')
  })

  t.test('service settings the daemon relies on', async t => {
    const service = unitSection(text, 'Service')
    const unit = unitSection(text, 'Unit')
    const install = unitSection(text, 'Install')
    t.same(service.get('Type'), ['notify'], 'READY=1 comes from the daemon after recovery and mount')
    t.same(service.get('NotifyAccess'), ['main'])
    t.same(service.get('ExecStart'), ['/usr/local/bin/s3link mount %i'])
    t.same(service.get('Restart'), ['on-failure'])
    t.same(service.get('KillSignal'), ['SIGTERM'], 'SIGTERM drains and unmounts')
    t.ok(service.get('TimeoutStopSec'), 'stop timeout leaves time to drain')
    t.ok(service.get('Environment')?.includes('UV_THREADPOOL_SIZE=16'))
    t.ok(service.get('DeviceAllow')?.includes('/dev/fuse rw'), '/dev/fuse allowed under DevicePolicy=closed')
    t.same(unit.get('After'), ['network-online.target'])
    t.same(unit.get('Wants'), ['network-online.target'])
    t.same(install.get('WantedBy'), ['multi-user.target'])

    // Each of these gives the service its own mount namespace, and a FUSE mount made there never
    // reaches the host (systemd.exec(5), PrivateMounts=). Keep them out, whatever a linter suggests.
    const namespacing = [
      'PrivateMounts', 'PrivateTmp', 'PrivateDevices', 'ProtectSystem', 'ProtectHome',
      'ProtectKernelTunables', 'ProtectKernelModules', 'ProtectKernelLogs', 'ProtectControlGroups',
      'ProtectProc', 'ProcSubset', 'ReadOnlyPaths', 'ReadWritePaths', 'InaccessiblePaths',
      'ExecPaths', 'NoExecPaths', 'TemporaryFileSystem', 'BindPaths', 'BindReadOnlyPaths',
      'MountFlags', 'RootDirectory', 'RootImage', 'MountImages', 'ExtensionImages',
      'ExtensionDirectories', 'DynamicUser', 'PrivateNetwork', 'PrivateUsers', 'PrivateIPC',
      'IPCNamespacePath', 'NetworkNamespacePath',
    ]
    for (const key of namespacing) t.notOk(service.has(key), `${key}= is not set`)
  })
})

t.test('mount.s3link', async t => {
  t.equal(mode(helperFile), '0755', 'helper is executable in the repository')

  const dir = tempDir(t, 'helper')
  const fakeBin = path.join(dir, 'bin')
  const mountpoint = path.join(dir, 'mnt')
  const argvFile = path.join(dir, 'argv')
  fs.mkdirSync(fakeBin)
  fs.mkdirSync(mountpoint)
  // The fake CLI records one argument per line and can be told to fail like a daemon that did not
  // come up (message on stderr, non-zero status).
  fs.writeFileSync(
    path.join(fakeBin, 's3link'),
    [
      '#!/bin/sh',
      'printf "%s\\n" "$@" > "$FAKE_ARGV"',
      'if [ -n "$FAKE_FAIL" ]; then echo "$FAKE_FAIL" >&2; exit 3; fi',
      '',
    ].join('\n'),
    { mode: 0o755 },
  )

  function helper(args: string[], extraEnv: NodeJS.ProcessEnv = {}) {
    fs.rmSync(argvFile, { force: true })
    const env = { ...process.env, PATH: `${fakeBin}:${process.env.PATH ?? ''}`, FAKE_ARGV: argvFile, ...extraEnv }
    // Run the file itself, as mount(8) does: this also covers the #!/bin/sh line and the mode.
    const res = run(helperFile, args, { cwd: dir, env })
    const argv = fs.existsSync(argvFile) ? fs.readFileSync(argvFile, 'utf8').split('\n').slice(0, -1) : null
    return { ...res, argv }
  }

  const expected = ['mount', 'fs1', '--mountpoint', mountpoint, '--background']

  t.test('fstab-style options', async t => {
    const res = helper(['fs1', mountpoint, '-o', 'rw,_netdev'])
    t.equal(res.status, 0, res.stderr)
    t.same(res.argv, expected)
  })

  t.test('-n -v flags', async t => {
    const res = helper(['fs1', mountpoint, '-n', '-v'])
    t.equal(res.status, 0, res.stderr)
    t.same(res.argv, expected)
    t.match(res.stderr, /running: .*s3link mount fs1 --mountpoint/, '-v shows the command')
  })

  t.test('grouped flags, attached option value, options before operands', async t => {
    const res = helper(['-nv', '-odefaults,auto,nofail,x-systemd.automount,nosuid,nodev', 'fs1', mountpoint])
    t.equal(res.status, 0, res.stderr)
    t.same(res.argv, expected)
  })

  t.test('config= option becomes --config', async t => {
    const res = helper(['fs1', mountpoint, '-o', 'rw,config=/etc/s3link/other.yaml'])
    t.equal(res.status, 0, res.stderr)
    t.same(res.argv, ['mount', 'fs1', '--mountpoint', mountpoint, '--config', '/etc/s3link/other.yaml', '--background'])
  })

  t.test('relative mount point is made absolute', async t => {
    const res = helper(['fs1', 'mnt'])
    t.equal(res.status, 0, res.stderr)
    t.same(res.argv, expected)
  })

  t.test('missing arguments are a usage error', async t => {
    for (const args of [[], ['fs1'], ['-o', 'rw', 'fs1']]) {
      const res = helper(args)
      t.equal(res.status, 1, `exit 1 for [${args.join(' ')}]`)
      t.match(res.stderr, /^Usage: mount\.s3link NAME DIR/m, 'usage on stderr')
      t.equal(res.argv, null, 's3link not run')
    }
  })

  t.test('other invocation errors', async t => {
    for (const args of [['fs1', mountpoint, 'extra'], ['fs1', mountpoint, '-x'], ['fs1', mountpoint, '-o']]) {
      const res = helper(args)
      t.equal(res.status, 1, `exit 1 for [${args.join(' ')}]`)
      t.equal(res.argv, null, 's3link not run')
    }
  })

  t.test('-h prints usage and succeeds', async t => {
    const res = helper(['-h'])
    t.equal(res.status, 0)
    t.match(res.stdout, /^Usage: mount\.s3link NAME DIR/)
    t.equal(res.argv, null)
  })

  t.test('unsupported options fail unless sloppy', async t => {
    const strict = helper(['fs1', mountpoint, '-o', 'rw,ro'])
    t.equal(strict.status, 1)
    t.match(strict.stderr, /unsupported mount option: ro/)
    t.equal(strict.argv, null, 'a read-only request is not silently mounted read-write')

    const sloppy = helper(['fs1', mountpoint, '-s', '-o', 'ro'])
    t.equal(sloppy.status, 0, sloppy.stderr)
    t.match(sloppy.stderr, /ignoring unsupported mount option: ro/)
    t.same(sloppy.argv, expected)
  })

  t.test('-f checks everything but does not mount', async t => {
    const res = helper(['fs1', mountpoint, '-f'])
    t.equal(res.status, 0, res.stderr)
    t.equal(res.argv, null)
  })

  t.test('failures are exit 32 with the daemon error passed through', async t => {
    const failed = helper(['fs1', mountpoint], { FAKE_FAIL: 'recovery failed: boom' })
    t.equal(failed.status, 32)
    t.match(failed.stderr, /recovery failed: boom/)

    const noDir = helper(['fs1', path.join(dir, 'missing')])
    t.equal(noDir.status, 32)
    t.match(noDir.stderr, /does not exist/)
    t.equal(noDir.argv, null)

    const noRelDir = helper(['fs1', 'missing'])
    t.equal(noRelDir.status, 32)
    t.match(noRelDir.stderr, /mount point missing does not exist/)
  })
})

t.test('make install', async t => {
  const dir = tempDir(t, 'install')
  const src = path.join(dir, 'src')

  // A source tree with the repository's Makefile, launcher and systemd files, and stand-ins for the
  // build outputs, so the real install recipe runs without building anything.
  fs.mkdirSync(src)
  fs.copyFileSync(path.join(repo, 'Makefile'), path.join(src, 'Makefile'))
  fs.cpSync(path.join(repo, 'bin'), path.join(src, 'bin'), { recursive: true })
  fs.cpSync(path.join(repo, 'systemd'), path.join(src, 'systemd'), { recursive: true })
  const files: Record<string, string> = {
    'package.json': JSON.stringify({
      name: 's3link',
      version: '0.0.0',
      dependencies: { keepme: '^1.0.0' },
      devDependencies: { devonly: '^1.0.0' },
    }),
    'node_modules/keepme/package.json': JSON.stringify({ name: 'keepme', version: '1.0.0' }),
    'node_modules/devonly/package.json': JSON.stringify({ name: 'devonly', version: '1.0.0' }),
    // Reports where it was loaded from, to show which dist/ the installed command uses.
    'dist/cli/main.js': 'exports.main = (argv) => console.log(JSON.stringify({ file: __filename, argv }))\n',
    'native/build/s3link_fuse.node': 'not really a shared object\n',
  }
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(src, name)), { recursive: true })
    fs.writeFileSync(path.join(src, name), content)
  }

  // A make started from `make test` must not inherit its jobserver and flags.
  const env = { ...process.env }
  for (const k of ['MAKEFLAGS', 'MFLAGS', 'MAKELEVEL', 'MAKEOVERRIDES']) delete env[k]
  const make = (...args: string[]) => run('make', ['-C', src, '--no-print-directory', ...args], { env })

  t.test('staged install with PREFIX=/usr/local', async t => {
    const root = path.join(dir, 'root')
    const app = path.join(root, 'usr/local/lib/s3link')
    // A file left over from an older release must not survive a reinstall.
    fs.mkdirSync(path.join(app, 'dist'), { recursive: true })
    fs.writeFileSync(path.join(app, 'dist/stale.js'), '')

    // -o build: treat the build as done; install must not rebuild.
    const res = make('-o', 'build', 'install', `DESTDIR=${root}`, 'PREFIX=/usr/local')
    t.equal(res.status, 0, res.stderr)
    t.notMatch(res.stdout, /systemctl daemon-reload\n/, 'no daemon-reload for a staged install')

    t.equal(mode(path.join(app, 'bin/s3link')), '0755', 'launcher')
    t.equal(mode(path.join(app, 'dist/cli/main.js')), '0644', 'dist')
    t.equal(mode(path.join(app, 'native/build/s3link_fuse.node')), '0644', 'native addon')
    t.equal(mode(path.join(app, 'package.json')), '0644', 'package.json')
    t.ok(fs.existsSync(path.join(app, 'node_modules/keepme/package.json')), 'dependencies installed')
    t.notOk(fs.existsSync(path.join(app, 'node_modules/devonly')), 'devDependencies pruned')
    t.notOk(fs.existsSync(path.join(app, 'dist/stale.js')), 'old dist replaced, not merged')
    t.notOk(fs.existsSync(path.join(app, 'native/fuse')), 'only native/build is installed')

    const link = path.join(root, 'usr/local/bin/s3link')
    t.ok(fs.lstatSync(link).isSymbolicLink(), 'bin/s3link is a symlink')
    t.equal(fs.readlinkSync(link), '../lib/s3link/bin/s3link', 'relative, valid with and without DESTDIR')

    const unit = path.join(root, 'etc/systemd/system/s3link@.service')
    t.equal(mode(unit), '0644', 'unit')
    t.equal(fs.readFileSync(unit, 'utf8'), fs.readFileSync(unitFile, 'utf8'), 'unit as shipped for /usr/local')

    const helper = path.join(root, 'sbin/mount.s3link')
    t.equal(mode(helper), '0755', 'mount helper')
    t.equal(fs.readFileSync(helper, 'utf8'), fs.readFileSync(helperFile, 'utf8'), 'helper as shipped for /usr/local')

    t.ok(fs.statSync(path.join(root, 'etc/s3link')).isDirectory(), '/etc/s3link created')
    t.equal(mode(path.join(root, 'etc/s3link')), '0755', '/etc/s3link mode')

    // node resolves require() from the script's real path, so both a relative link (as installed)
    // and an absolute one must load the installed dist/, not one next to the link.
    const absLink = path.join(dir, 's3link-abs')
    fs.symlinkSync(path.join(app, 'bin/s3link'), absLink)
    for (const cmd of [link, absLink]) {
      const out = run(cmd, ['status', 'fs1'], { cwd: dir })
      t.equal(out.status, 0, out.stderr)
      t.same(JSON.parse(out.stdout), { file: path.join(app, 'dist/cli/main.js'), argv: ['status', 'fs1'] },
        `${path.basename(cmd)} runs the installed CLI`)
    }

    t.test('uninstall removes what install wrote and keeps configuration', async t => {
      const un = make('uninstall', `DESTDIR=${root}`, 'PREFIX=/usr/local')
      t.equal(un.status, 0, un.stderr)
      for (const gone of [app, link, unit, helper]) t.notOk(fs.existsSync(gone), `${path.relative(root, gone)} removed`)
      t.ok(fs.existsSync(path.join(root, 'etc/s3link')), '/etc/s3link kept')
    })
  })

  t.test('another PREFIX is written into the unit and the helper', async t => {
    const root = path.join(dir, 'root-usr')
    const res = make('-o', 'build', 'install', `DESTDIR=${root}`, 'PREFIX=/usr')
    t.equal(res.status, 0, res.stderr)
    t.equal(fs.readlinkSync(path.join(root, 'usr/bin/s3link')), '../lib/s3link/bin/s3link')
    const unit = unitSection(fs.readFileSync(path.join(root, 'etc/systemd/system/s3link@.service'), 'utf8'), 'Service')
    t.same(unit.get('ExecStart'), ['/usr/bin/s3link mount %i'])
    t.match(fs.readFileSync(path.join(root, 'sbin/mount.s3link'), 'utf8'), /^bindir=\/usr\/bin$/m)
  })
})
