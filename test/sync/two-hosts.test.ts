// Two file systems (two daemons, two mounts) linked to the same prefix of one S3 server, import
// and export on in both: what is written on one appears on the other with the same bytes, modes,
// owners, mtimes and symlinks; renames and deletions propagate. S3 is the shared engine.
import t from 'tap'
import { startFs, startS3, type TestFs } from '../fixtures/harness'
import { until } from '../fixtures/until'

const BUCKET = 'shared'
const ALL = 'NEW,CHANGED,DELETED'

async function host (t: Tap.Test, endpoint: string): Promise<TestFs> {
  const tfs = await startFs(t, { config: { importIntervalMs: 400, draCheckIntervalMs: 1000 } })
  t.equal((await tfs.addBucket(BUCKET, endpoint)).code, 0)
  const r = await tfs.cli(['dra', 'create', '/team', `s3://${BUCKET}/team/`, '--import', ALL, '--export', ALL, '--wait'])
  t.equal(r.code, 0, r.stderr)
  return tfs
}

/** A tree listing with what must match across hosts: type, mode, owner, size, mtime, target or checksum. */
const TREE = 'cd team && find . -mindepth 1 | sort | while read -r p; do ' +
  'if [ -L "$p" ]; then echo "$p $(stat -c "%A %u:%g %Y" "$p") -> $(readlink "$p")"; ' +
  'elif [ -d "$p" ]; then echo "$p $(stat -c "%A %u:%g" "$p")"; ' +
  'else echo "$p $(stat -c "%A %u:%g %s %Y" "$p") $(sha256sum < "$p" | cut -c1-16)"; fi; done'

t.test('written on one host, seen on the other', async (t) => {
  const s3 = await startS3(t, [BUCKET])
  const a = await host(t, s3.endpoint)
  const b = await host(t, s3.endpoint)
  t.equal((await a.sh('mkdir -p team/src/lib && echo "int main;" > team/src/main.c && head -c 3000000 /dev/urandom > team/src/lib/blob.bin && ' +
    'ln -s src/main.c team/entry && chmod 600 team/src/main.c && chown 1000:100 team/src/lib/blob.bin && touch -d 2020-02-02 team/src/lib/blob.bin')).code, 0)
  const expected = (await a.sh(TREE)).stdout
  t.match(expected, /main\.c -rw------- 0:0 10 /)
  await until('host B sees the same tree', async () => (await b.sh(TREE)).stdout === expected).catch(async (err) => {
    console.error('A:\n' + expected + '\nB:\n' + (await b.sh(TREE)).stdout + '\nA log:\n' + a.readLog().slice(-3000) + '\nB log:\n' + b.readLog().slice(-3000))
    throw err
  })
  t.pass('bytes, modes, owners, mtimes and symlinks match')

  t.equal((await b.sh('mv team/src/lib team/src/library && rm team/entry && echo "from b" > team/b.txt')).code, 0)
  const afterB = (await b.sh(TREE)).stdout
  await until('host A sees B\'s rename, delete and new file', async () => (await a.sh(TREE)).stdout === afterB)
  t.equal((await a.sh('cat team/b.txt')).stdout, 'from b\n')
  const stillThere = (await a.sh('test -e team/src/lib')).code === 0
  if (stillThere) {
    console.error('A tree now:\n' + (await a.sh(TREE)).stdout + '\nafterB:\n' + afterB)
    console.error('A log:\n' + a.readLog().split('\n').filter((l) => /lib/.test(l) || /import/.test(l)).join('\n').slice(-6000))
    console.error('B log:\n' + b.readLog().split('\n').filter((l) => /lib/.test(l) || /import|export/.test(l)).join('\n').slice(-6000))
  }
  t.notOk(stillThere, 'the old name is gone on A')
})
