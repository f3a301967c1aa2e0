// POSIX behaviour through a real mount, one operation (and its corner cases) per subtest.
import t from 'tap'
import { startFs } from '../fixtures/harness'

const NOBODY = 65534

t.test('POSIX operations through the mount', async (t) => {
  const fs = await startFs(t)
  // Runs a command that must succeed; returns its stdout.
  const ok = async (cmd: string, opts: { uid?: number } = {}): Promise<string> => {
    const r = await fs.sh(cmd, opts)
    t.equal(r.code, 0, `${cmd} → exit 0`, { stderr: r.stderr })
    return r.stdout
  }
  // Runs a command that must fail with the given error text (strerror of the errno).
  const fails = async (cmd: string, message: RegExp, opts: { uid?: number } = {}): Promise<void> => {
    const r = await fs.sh(cmd, opts)
    t.not(r.code, 0, `${cmd} fails`)
    t.match(r.stderr, message, `${cmd}: ${message}`)
  }
  const stat = async (fmt: string, p: string): Promise<string> => (await ok(`stat -c '${fmt}' ${p}`)).trim()

  t.test('files: create, write, read, append, ls -l', async () => {
    await ok('mkdir f && echo hello > f/a && echo world >> f/a')
    t.equal(await ok('cat f/a'), 'hello\nworld\n')
    t.equal(await stat('%s %F', 'f/a'), '12 regular file')
    t.match(await ok('ls -l f'), /-rw-r--r-- 1 root root 12 .* a/)
  })

  t.test('mkdir -p, rmdir, rm -r, ENOTEMPTY, ENOTDIR, EEXIST, ENOENT', async () => {
    await ok('mkdir -p d/x/y/z && touch d/x/y/z/file')
    t.equal(await stat('%h', 'd/x'), '3', 'a directory with one subdirectory has 3 links')
    await fails('rmdir d/x', /Directory not empty/)
    await fails('mkdir d/x', /File exists/)
    await fails('cat d/nope', /No such file or directory/)
    await fails('ls d/x/y/z/file/below', /Not a directory/)
    await fails('rmdir d/x/y/z/file', /Not a directory/)
    await ok('rm -r d/x')
    await fails('ls d/x', /No such file or directory/)
    t.equal(await stat('%h', 'd'), '2')
    await ok('rmdir d')
  })

  t.test('unlink of a directory is EISDIR; reading a directory is EISDIR', async () => {
    await ok('mkdir e')
    const r = await fs.sh('python3 -c "import os; os.unlink(\'e\')"')
    t.match(r.stderr, /IsADirectoryError|Is a directory|PermissionError|Operation not permitted/)
    await fails('cat e', /Is a directory/)
  })

  t.test('ENAMETOOLONG for a component over 255 bytes; 255 is fine', async () => {
    await ok(`touch ${'n'.repeat(255)}`)
    await fails(`touch ${'n'.repeat(256)}`, /File name too long/)
    await ok(`rm ${'n'.repeat(255)}`)
  })

  t.test('mv: files and directories, across directories, over an existing target', async () => {
    await ok('mkdir -p m/src/sub m/dst && echo 1 > m/src/sub/f && echo old > m/dst/target && echo new > m/src/file')
    await ok('mv m/src/file m/dst/target')
    t.equal(await ok('cat m/dst/target'), 'new\n')
    await fails('cat m/src/file', /No such file/)
    const ino = await stat('%i', 'm/src/sub')
    await ok('mv m/src/sub m/dst/')
    t.equal(await stat('%i', 'm/dst/sub'), ino, 'a real rename (no EXDEV copy fallback): the inode is the same')
    t.equal(await ok('cat m/dst/sub/f'), '1\n')
    t.equal(await stat('%h', 'm/src'), '2', 'source parent lost a subdirectory link')
    t.equal(await stat('%h', 'm/dst'), '3', 'target parent gained one')
    await ok('mkdir m/empty && mv m/dst/sub m/empty2 && mv -T m/empty2 m/empty')
    t.equal(await ok('cat m/empty/f'), '1\n', 'a directory replaces an empty directory')
  })

  t.test('after a directory is renamed, nothing answers for its old paths (the binding keeps directory attributes for a second)', async () => {
    // One shell, so all of it falls within the second the binding keeps a directory's attributes.
    const r = await fs.sh('mkdir -p dc/a/b/c dc/x dc/y && ix=$(stat -c %i dc/x) && stat dc/a dc/a/b dc/a/b/c dc/y > /dev/null && ' +
      'mv dc/a dc/z && mkdir dc/a && mv -T dc/x dc/y && ' +
      'for p in dc/a/b dc/a/b/c dc/x; do stat $p > /dev/null 2>&1 && echo "$p still answers"; done; ' +
      'stat -c %i dc/y | grep -qx "$ix" || echo "dc/y is not the renamed dc/x"; stat dc/z/b/c > /dev/null || echo "dc/z/b/c missing"')
    t.equal(r.code, 0, r.stderr)
    t.equal(r.stdout, '', 'old paths are gone, new ones are there')
  })

  t.test('rename over a non-empty directory is ENOTEMPTY; file over dir EISDIR; dir over file ENOTDIR', async () => {
    await ok('mkdir -p r/a r/b && touch r/b/keep r/file')
    const py = (a: string, b: string): string => `python3 -c "import os; os.rename('${a}', '${b}')"`
    t.match((await fs.sh(py('r/a', 'r/b'))).stderr, /Directory not empty/)
    t.match((await fs.sh(py('r/file', 'r/b'))).stderr, /Is a directory/)
    t.match((await fs.sh(py('r/a', 'r/file'))).stderr, /Not a directory/)
    t.match((await fs.sh(py('r/a', 'r/a/inside'))).stderr, /Invalid argument/)
    t.equal(await ok('ls r/b'), 'keep\n', 'nothing changed')
  })

  t.test('hard links: counts, shared inode, content, unlink one name', async () => {
    await ok('mkdir h && echo data > h/a && ln h/a h/b')
    t.equal(await stat('%h', 'h/a'), '2')
    t.equal(await stat('%i', 'h/a'), await stat('%i', 'h/b'), 'same inode number')
    await ok('echo more >> h/b')
    t.equal(await ok('cat h/a'), 'data\nmore\n')
    await ok('rm h/a')
    t.equal(await stat('%h', 'h/b'), '1')
    t.equal(await ok('cat h/b'), 'data\nmore\n')
    await fails('ln h h2', /not allowed|Operation not permitted/)
    // rename(2) onto another name of the same file does nothing (mv itself refuses to try)
    await ok('ln h/b h/c && python3 -c "import os; os.rename(\'h/b\', \'h/c\')"')
    t.equal(await ok('ls h'), 'b\nc\n')
  })

  t.test('symlinks: ln -s, readlink, dangling, lstat', async () => {
    await ok('mkdir s && echo target > s/t && ln -s t s/link && ln -s /does/not/exist s/dangling')
    t.equal((await ok('readlink s/link')).trim(), 't')
    t.equal(await ok('cat s/link'), 'target\n')
    t.equal(await stat('%F %s', 's/link'), 'symbolic link 1')
    t.equal((await ok('readlink s/dangling')).trim(), '/does/not/exist')
    await fails('cat s/dangling', /No such file/)
  })

  t.test('chmod, chown, sticky bit, EACCES for other users (default_permissions)', async () => {
    await ok('mkdir p && echo secret > p/private && chmod 600 p/private && chmod 755 p')
    t.equal(await stat('%a', 'p/private'), '600')
    await fails('cat p/private', /Permission denied/, { uid: NOBODY })
    await fails('touch p/new', /Permission denied/, { uid: NOBODY })
    await ok('chown 1000:1000 p/private')
    t.equal(await stat('%u:%g', 'p/private'), '1000:1000')
    await fails(`chown ${NOBODY} p/private`, /Operation not permitted/, { uid: 1000 })
    await ok('chown nobody p/private && chmod 644 p/private')
    t.equal(await ok('cat p/private', { uid: NOBODY }), 'secret\n', 'readable once permitted')

    await ok('mkdir sticky && chmod 1777 sticky && touch sticky/roots')
    t.equal(await stat('%A', 'sticky'), 'drwxrwxrwt')
    await ok('touch sticky/mine', { uid: NOBODY })
    t.equal(await stat('%u', 'sticky/mine'), String(NOBODY), 'a new file belongs to its creator')
    await fails('rm -f sticky/roots', /Operation not permitted/, { uid: NOBODY })
    await ok('rm sticky/mine', { uid: NOBODY })
  })

  t.test('set-group-ID directories pass their group on', async () => {
    await ok('mkdir g && chown 0:1234 g && chmod 2775 g && touch g/f && mkdir g/sub')
    t.equal(await stat('%g', 'g/f'), '1234')
    t.equal(await stat('%g %A', 'g/sub'), '1234 drwxr-sr-x')
  })

  t.test('timestamps: touch -d, touch -m keeps atime, nanoseconds, updates by each operation', async () => {
    await ok('mkdir ts && touch ts/f && touch -d "2001-02-03 04:05:06.123456789 UTC" ts/f')
    t.equal(await stat('%X %y', 'ts/f'), '981173106 2001-02-03 04:05:06.123456789 +0000')
    await ok('touch -m -d @1000000000.5 ts/f')
    t.equal(await stat('%X %Y', 'ts/f'), '981173106 1000000000', 'touch -m leaves atime alone')
    t.match(await stat('%y', 'ts/f'), /\.500000000/)

    const times = async (p: string): Promise<{ m: string, c: string }> => {
      const [m, c] = (await stat('%.9Y %.9Z', p)).split(' ')
      return { m, c }
    }
    const changes = async (what: string, cmd: string, p: string, expect: { m: boolean, c: boolean }): Promise<void> => {
      const before = await times(p)
      await new Promise((resolve) => setTimeout(resolve, 20))
      await ok(cmd)
      const after = await times(p)
      t.equal(after.m !== before.m, expect.m, `${what}: mtime of ${p} ${expect.m ? 'changes' : 'stays'}`)
      t.equal(after.c !== before.c, expect.c, `${what}: ctime of ${p} ${expect.c ? 'changes' : 'stays'}`)
    }
    await changes('write', 'echo x >> ts/f', 'ts/f', { m: true, c: true })
    await changes('chmod', 'chmod 640 ts/f', 'ts/f', { m: false, c: true })
    await changes('chown', 'chown 1:1 ts/f', 'ts/f', { m: false, c: true })
    await changes('link', 'ln ts/f ts/f2', 'ts/f', { m: false, c: true })
    await changes('rename', 'mv ts/f2 ts/f3', 'ts/f', { m: false, c: true })
    await changes('truncate', 'truncate -s 1 ts/f', 'ts/f', { m: true, c: true })
    await changes('setfattr', 'setfattr -n user.k -v v ts/f', 'ts/f', { m: false, c: true })
    await changes('create in dir', 'touch ts/new', 'ts', { m: true, c: true })
    await changes('unlink in dir', 'rm ts/new', 'ts', { m: true, c: true })
    await changes('read', 'cat ts/f >/dev/null', 'ts/f', { m: false, c: false })
  })

  t.test('truncate, random writes with dd conv=notrunc seek=, sparse holes read as zeros', async () => {
    await ok('mkdir tr && printf 0123456789 > tr/f && truncate -s 4 tr/f')
    t.equal(await ok('cat tr/f'), '0123')
    await ok('truncate -s 8 tr/f')
    t.equal(await ok('od -An -c tr/f | tr -s " "'), ' 0 1 2 3 \\0 \\0 \\0 \\0\n')
    await ok('printf XY | dd of=tr/f bs=1 seek=2 conv=notrunc status=none')
    t.equal(await ok('head -c 4 tr/f'), '01XY')
    await ok('dd if=/dev/urandom of=tr/big bs=64k count=40 status=none && dd if=/dev/zero of=tr/big bs=1k seek=100 count=3 conv=notrunc status=none')
    const sums = await ok('dd if=tr/big bs=1k skip=100 count=3 status=none | md5sum; head -c 3072 /dev/zero | md5sum')
    const [a, b] = sums.trim().split('\n')
    t.equal(a, b, 'the overwritten range reads back')
    t.equal(await stat('%s', 'tr/big'), String(64 * 1024 * 40))
  })

  t.test('unlink of an open file: still readable and writable through the open descriptor', async () => {
    await ok('mkdir u && echo still-here > u/f')
    const out = await ok('exec 3<u/f 4>>u/f; rm u/f; ls u | wc -l; test -e u/f || echo gone; echo appended >&4; cat <&3')
    t.equal(out, '0\ngone\nstill-here\nappended\n')
    t.equal(await ok('ls -a u'), '.\n..\n', 'nothing left once the last descriptor is closed')
    await ok('rmdir u')
  })

  t.test('user.* extended attributes with setfattr/getfattr', async () => {
    await ok('mkdir x && touch x/f && setfattr -n user.color -v blue x/f && setfattr -n user.size -v 42 x/f')
    t.equal(await ok('getfattr --only-values -n user.color x/f'), 'blue')
    t.match(await ok('getfattr -d x/f'), /user.color="blue"\nuser.size="42"/)
    await ok('setfattr -x user.color x/f')
    await fails('getfattr -n user.color x/f', /No such attribute/)
    await fails('setfattr -n trusted.x -v 1 x/f', /Operation not supported/)
    await ok('setfattr -n user.dir -v yes x && getfattr -n user.dir x')
  })

  t.test('df reports the capacity of the state disk; find walks the tree', async () => {
    t.match(await ok(`df -P ${fs.mountpoint} | tail -1`), /^s3link:\S+\s+\d+\s+\d+\s+\d+/)
    await ok('mkdir -p fd/a/b && touch fd/a/1 fd/a/b/2')
    t.equal(await ok('cd fd && find . | sort'), '.\n./a\n./a/1\n./a/b\n./a/b/2\n')
    t.equal(await ok('cd fd && find . -type f -name 2'), './a/b/2\n')
  })

  t.test('mknod of a FIFO works as a pipe', async () => {
    await ok('mkfifo fifo && (echo through > fifo &) && cat fifo > fifo.out')
    t.equal(await ok('cat fifo.out'), 'through\n')
    t.equal(await stat('%F', 'fifo'), 'fifo')
  })
})

