// `s3link hsm release` (issue 7, lfs hsm_release) against the real daemon, mount and embedded S3
// server: an exported file's local copy is dropped (the content file in the state directory is
// emptied), it reads back the same and is local again; dirty, never-exported and open files are
// refused by name and left as they were; a directory releases what it can and names the rest; the
// released state survives a restart.
import t from 'tap'
import path from 'node:path'
import { CLI, run, startFs, startS3, type TestFs } from '../fixtures/harness'
import { inoHex } from '../../src/store/keys'
import { until } from '../fixtures/until'

const BUCKET = 'release-me'
const NEVER = '(0x00000000)'
const CLEAN = '(0x00000009) exists archived, archive_id:1'
const DIRTY = '(0x0000000b) exists dirty archived, archive_id:1'
const RELEASED = '(0x0000000d) released exists archived, archive_id:1'

const cliIn = async (tfs: TestFs, cwd: string, args: string[]) => await run(process.execPath, [CLI, ...args, '--config', tfs.configPath], { cwd })

/** The file's content file in STATE/data, as src/content/content.ts names it. */
async function contentFile (tfs: TestFs, p: string): Promise<string> {
  const ino = Number((await tfs.sh(`stat -c %i '${p}'`)).stdout.trim())
  const hex = inoHex(ino)
  return path.join(tfs.stateDir, 'data', hex.slice(-2), hex)
}
/** Size and disk usage (KiB) of a content file; 'missing' when there is none. */
async function usage (tfs: TestFs, file: string): Promise<string> {
  const r = await tfs.sh(`stat -c %s '${file}' && du -k '${file}' | cut -f1`)
  return r.code === 0 ? r.stdout.trim().split('\n').join(' ') : 'missing'
}

t.test('hsm release', async (t) => {
  const s3 = await startS3(t, [BUCKET])
  const tfs = await startFs(t, { config: { importIntervalMs: 3_600_000 } })
  const add = await tfs.addBucket(BUCKET, s3.endpoint)
  t.equal(add.code, 0, add.stderr)
  // ns1 exports automatically; ns2 only on request (so a dirty file stays dirty).
  for (const [dir, extra] of [['/ns1', ['--export', 'NEW,CHANGED,DELETED']], ['/ns2', []]] as Array<[string, string[]]>) {
    const dra = await tfs.cli(['dra', 'create', dir, `s3://${BUCKET}${dir}/`, ...extra, '--wait'])
    t.equal(dra.code, 0, dra.stderr)
  }
  const state = async (p: string): Promise<string> => (await cliIn(tfs, tfs.mountpoint, ['hsm', 'state', p])).stdout.slice(p.length + 2).trim()
  const sum = async (p: string): Promise<string> => (await tfs.sh(`sha256sum '${p}' | cut -d' ' -f1`)).stdout.trim()

  // ---- an exported file: released, emptied on disk, read back whole ----
  t.equal((await tfs.sh('head -c 4194304 /dev/urandom > ns1/big.bin')).code, 0)
  const before = await sum('ns1/big.bin')
  await until('exported', async () => await state('ns1/big.bin') === CLEAN)
  const file = await contentFile(tfs, 'ns1/big.bin')
  t.equal(await usage(tfs, file), '4194304 4096', 'the content is local: 4 MiB on disk')
  const one = await cliIn(tfs, tfs.p('ns1'), ['hsm', 'release', 'big.bin'])
  t.equal(one.code, 0, one.stderr)
  t.equal(one.stdout, 'released 1 file (4.0 MiB), 0 released already\n')
  t.equal(one.stderr, '')
  t.equal(await state('ns1/big.bin'), RELEASED)
  t.equal(await usage(tfs, file), '0 0', 'the content file is emptied')
  t.equal((await tfs.sh('stat -c %s ns1/big.bin')).stdout.trim(), '4194304', 'the metadata stays')
  const metrics = await (await fetch(tfs.apiUrl() + '/metrics', { headers: { authorization: `Bearer ${tfs.credentials().token}` } })).text()
  t.match(metrics, /^s3link_cache_released_bytes_total\{by="request"\} 4194304$/m, '/metrics counts it, with no cache bound configured')
  const again = await tfs.cli(['hsm', 'release', tfs.p('ns1/big.bin'), '--json'])
  t.equal(again.code, 0, 'released already: a no-op')
  t.match(JSON.parse(again.stdout), { released: 0, skipped: 1, refused: 0, failed: [] })
  // The kernel may still cache the pages written before the release (auto_cache): drop them, so
  // the read below reaches the daemon and loads from S3.
  t.equal((await tfs.sh('dd if=ns1/big.bin iflag=nocache count=0 status=none')).code, 0)
  t.equal(await sum('ns1/big.bin'), before, 'read back from S3: the same bytes')
  t.equal(await state('ns1/big.bin'), CLEAN, 'local again')
  t.equal(await usage(tfs, file), '4194304 4096')

  // ---- refused: dirty, never exported (in a DRA and outside), open; nothing changes for them ----
  t.equal((await tfs.sh('echo one > ns2/dirty.txt && echo new > ns2/new.txt && echo out > outside.txt && echo open > ns1/open.txt')).code, 0)
  t.equal((await tfs.cli(['hsm', 'archive', tfs.p('ns2/dirty.txt'), '--wait'])).code, 0)
  t.equal((await tfs.sh('echo two >> ns2/dirty.txt')).code, 0)
  t.equal(await state('ns2/dirty.txt'), DIRTY)
  await until('open.txt exported', async () => await state('ns1/open.txt') === CLEAN)
  const refused = await cliIn(tfs, tfs.mountpoint, ['hsm', 'release', 'ns2/dirty.txt', 'ns2/new.txt', 'outside.txt', 'nope'])
  t.equal(refused.code, 1, 'named files not released: exit 1')
  t.equal(refused.stdout, 'released 0 files (0 B), 0 released already, 3 not released (1 dirty, 2 never exported), 1 failed\n')
  t.match(refused.stderr, /cannot release ns2\/dirty.txt: changed since its export \(dirty\)/)
  t.match(refused.stderr, /cannot release ns2\/new.txt: never exported/)
  t.match(refused.stderr, /cannot release outside.txt: never exported/)
  t.match(refused.stderr, /cannot release nope: No such file or directory/)
  t.equal(await state('ns2/dirty.txt'), DIRTY)
  t.equal(await state('ns2/new.txt'), NEVER)
  t.equal((await tfs.sh('cat ns2/dirty.txt ns2/new.txt outside.txt')).stdout, 'one\ntwo\nnew\nout\n')
  const open = await tfs.sh(`exec 3<ns1/open.txt; ${process.execPath} ${CLI} hsm release ns1/open.txt --config ${tfs.configPath}; s=$?; exec 3<&-; exit $s`)
  t.equal(open.code, 1, 'an open file is refused')
  t.match(open.stderr, /cannot release ns1\/open.txt: the file is open/)
  t.equal(await state('ns1/open.txt'), CLEAN)
  const link = await tfs.sh('ln -s big.bin ns1/link && true')
  t.equal(link.code, 0)
  const symlink = await tfs.cli(['hsm', 'release', tfs.p('ns1/link'), '--json'])
  t.equal(symlink.code, 1)
  t.match(JSON.parse(symlink.stdout), { refused: 1, reasons: { 'not-a-file': 1 } })

  // ---- a directory: what can be released is; the rest is named, not an error ----
  t.equal((await tfs.sh('mkdir ns2/d && echo a > ns2/d/a && echo b > ns2/d/b')).code, 0)
  t.equal((await tfs.cli(['hsm', 'archive', tfs.p('ns2/d/a'), '--wait'])).code, 0)
  const dir = await tfs.cli(['hsm', 'release', tfs.p('ns2')])
  t.equal(dir.code, 0, 'files under a directory that were not released do not fail the command')
  t.equal(dir.stdout, 'released 1 file (2 B), 0 released already, 3 not released (1 dirty, 2 never exported)\n')
  t.match(dir.stderr, /cannot release .*ns2\/d\/b: never exported/)
  t.equal(await state('ns2/d/a'), RELEASED)
  t.equal(await state('ns2/d/b'), NEVER)

  // ---- the released state survives a restart, and reads load it ----
  await tfs.restart()
  t.equal(await state('ns2/d/a'), RELEASED, 'still released after a restart')
  t.equal((await tfs.sh('cat ns2/d/a')).stdout, 'a\n')
  t.equal(await state('ns2/d/a'), CLEAN)
})
