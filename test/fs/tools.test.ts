// Everyday tools through a real mount: each must behave as on a local disk.
import t from 'tap'
import { startFs } from '../fixtures/harness'

t.test('everyday tools', async (t) => {
  const fs = await startFs(t)
  const ok = async (cmd: string): Promise<string> => {
    const r = await fs.sh(cmd)
    t.equal(r.code, 0, cmd, { stderr: r.stderr })
    return r.stdout
  }
  // A source tree with the things copies must keep: modes, times, symlinks, hard links, xattrs.
  const SRC = `${fs.root}/src` // on local disk, outside the mount
  await ok(`mkdir -p ${SRC}/dir/sub && cd ${SRC} && echo a > dir/a && echo b > dir/sub/b && chmod 751 dir/sub && ` +
    'ln -s a dir/link && ln dir/a dir/hard && touch -d "2020-01-02 03:04:05" dir/a && setfattr -n user.tag -v t dir/a && ' +
    'head -c 3000000 /dev/urandom > dir/blob')
  const tree = "find . -printf '%P %y %m %s %n %l\\n' | sort"
  const expected = await ok(`cd ${SRC}/dir && ${tree}`)

  t.test('cp -a keeps modes, times, links and xattrs', async () => {
    await ok(`cp -a ${SRC}/dir cpa`)
    t.equal(await ok(`cd cpa && ${tree}`), expected)
    t.equal(await ok("stat -c '%y' cpa/a"), await ok(`stat -c '%y' ${SRC}/dir/a`))
    t.equal(await ok('getfattr --only-values -n user.tag cpa/a'), 't')
    t.equal(await ok('cd cpa && sha256sum blob'), await ok(`cd ${SRC}/dir && sha256sum blob`))
  })

  t.test('tar c and x', async () => {
    await ok(`tar -C ${SRC} -cf tarred.tar dir && mkdir tx && tar -C tx -xpf tarred.tar`)
    t.equal(await ok(`cd tx/dir && ${tree}`), expected)
    t.equal(await ok('tar -tf tarred.tar | sort'), 'dir/\ndir/a\ndir/blob\ndir/hard\ndir/link\ndir/sub/\ndir/sub/b\n')
  })

  t.test('rsync -a, and a second run that transfers nothing', async () => {
    await ok(`rsync -aH ${SRC}/dir/ rs/`)
    t.equal(await ok(`cd rs && ${tree}`), expected)
    t.equal(await ok(`rsync -aH --itemize-changes ${SRC}/dir/ rs/`), '', 'nothing left to copy')
  })

  t.test('git init, add, commit, log', async () => {
    await ok('mkdir repo && cd repo && git init -q && git config user.email t@t && git config user.name t && ' +
      'echo one > f && git add f && git commit -qm first && echo two >> f && git commit -qam second')
    t.equal(await ok('cd repo && git log --format=%s'), 'second\nfirst\n')
    t.equal(await ok('cd repo && git status --porcelain'), '')
    t.equal(await ok('cd repo && git fsck --strict 2>&1 | grep -v "^Checking" || true'), '')
  })

  t.test('sqlite3 create, insert, select', async () => {
    await ok('sqlite3 db.sqlite "create table t(k integer primary key, v text); ' +
      "with recursive n(i) as (select 1 union all select i + 1 from n where i < 2000) insert into t(v) select 'row' || i from n;\"")
    t.equal(await ok('sqlite3 db.sqlite "select count(*), max(k) from t; pragma integrity_check;"'), '2000|2000\nok\n')
  })
})
