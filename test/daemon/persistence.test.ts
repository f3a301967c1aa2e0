// Everything persists: across a clean unmount and restart, and across kill -9 of the daemon.
import t from 'tap'
import { startFs, isMounted } from '../fixtures/harness'

// A fingerprint of the whole tree: names, types, modes, owners, sizes, link counts, symlink
// targets, mtimes to the nanosecond, content checksums and xattrs.
const FINGERPRINT = "find . -printf '%P %y %m %U:%G %s %n %l %T@\\n' | sort; " +
  'find . -type f -print0 | sort -z | xargs -0 sha256sum; getfattr -R -d . 2>/dev/null'

const POPULATE = 'mkdir -p a/b/c && echo hello > a/f && chmod 640 a/f && chown 12:34 a/f && ' +
  'head -c 5000000 /dev/urandom > a/b/big && ln a/f a/b/hardlink && ln -s ../f a/b/sym && ' +
  'touch -d "1999-12-31 23:59:59.987654321" a/b/c && setfattr -n user.k -v val a/f && mkfifo a/pipe'

t.test('unmount, restart, remount: the same tree, bytes, modes, owners, times and links', async (t) => {
  const fs = await startFs(t)
  t.equal((await fs.sh(POPULATE)).code, 0)
  const before = await fs.sh(FINGERPRINT)
  t.equal(await fs.stop(), 0, 'daemon exits 0 on SIGTERM')
  t.notOk(await isMounted(fs.mountpoint), 'unmounted cleanly')
  await fs.mount()
  const after = await fs.sh(FINGERPRINT)
  t.equal(after.stdout, before.stdout)
  t.match(after.stdout, /a\/b\/c d 755 0:0 4096 2\s+946684799\.9876543210/)
})

t.test('kill -9: every file closed or fsynced is there after restart', async (t) => {
  const fs = await startFs(t)
  t.equal((await fs.sh(POPULATE)).code, 0)
  // Closed files, a renamed directory, a removed file: all acknowledged before the kill.
  t.equal((await fs.sh('for i in $(seq 1 200); do echo $i > a/n$i; done && mv a/b a/moved && rm a/n7')).code, 0)
  // A file kept open and fsynced (python: write, fsync, keep the descriptor) while the daemon dies.
  // It also holds a file it unlinked: its inode must outlive the name, then go at the restart.
  const fsynced = fs.sh('echo v > victim && python3 -c "import os,sys,time; v=open(\'victim\'); os.unlink(\'victim\'); ' +
    'f=open(\'open-file\',\'wb\'); f.write(b\'x\'*100000); f.flush(); os.fsync(f.fileno()); time.sleep(5)"')
  await waitFor(async () => (await fs.sh('test -s open-file')).code === 0)
  await new Promise((resolve) => setTimeout(resolve, 300))
  const before = await fs.sh(FINGERPRINT + ' | grep -v open-file')
  await fs.kill9()
  await fsynced // the writer fails once the mount is dead
  t.ok(await isMounted(fs.mountpoint), 'a dead mount is left behind')
  await fs.mount() // cleans the stale mount up first
  t.match(fs.readLog(), /stale mount/)
  const after = await fs.sh(FINGERPRINT + ' | grep -v open-file')
  t.equal(after.stdout, before.stdout)
  t.ok(fs.readLog().split('\n').some((l) => l.includes('removed files unlinked while open') && l.includes('"count":1')),
    'its inode was reaped')
  t.equal((await fs.sh('stat -c %s open-file')).stdout, '100000\n', 'the fsynced bytes survived')
  t.equal((await fs.sh('cat a/n200; test -e a/n7 || echo gone')).stdout, '200\ngone\n')
})

async function waitFor (cond: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!await cond()) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
