// Reads and writes the FUSE binding makes itself (native/fuse "Direct writes", "Direct reads"):
// after a handle's first write, later ones skip the daemon's event loop and are reported to it
// afterwards; after its first read, a local file's reads are served by the binding alone. What a
// user must not notice: stat and fstat show every write's size and a newer mtime at once, two
// descriptors of one file add up, the bytes survive close, restart and kill -9, a cache capacity
// configured while a file is open for writing applies to its next writes, and a reader never sees
// bytes a truncate, a write through another descriptor or a change in S3 has replaced.
import t from 'tap'
import path from 'node:path'
import { randomBytes, createHash } from 'node:crypto'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { startFs } from '../fixtures/harness'
import { until } from '../fixtures/until'
import { startAutoImportFs } from '../fixtures/linked'

const py = (script: string): string => `python3 - <<'EOF'\n${script}\nEOF`

// A model of the file is kept in memory; after every write, stat(2) by path and fstat(2) must
// already show its size, and the mtime never goes back. Prints the model's sha256 and size.
const WRITER = `
import os, hashlib, json, time
sizes = [131072, 1, 4096, 65536, 1048576, 333, 131072 * 3 + 7]
model = bytearray()
fd = os.open('f', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
last = 0
def check(what):
    global last
    st, fst = os.stat('f'), os.fstat(fd)
    assert st.st_size == len(model), (what, 'stat', st.st_size, len(model))
    assert fst.st_size == len(model), (what, 'fstat', fst.st_size, len(model))
    assert st.st_mtime_ns >= last, (what, 'mtime went back')
    last = st.st_mtime_ns
for i in range(120):
    b = os.urandom(sizes[i % len(sizes)])
    assert os.write(fd, b) == len(b)
    model += b
    check(i)
before = last
time.sleep(0.02)
os.pwrite(fd, b'inside', 1000)            # no new size, a new mtime
model[1000:1006] = b'inside'
check('inside')
assert last > before, 'a write inside the file moves mtime'
os.pwrite(fd, b'past the end', len(model) + 5000)   # a hole, then bytes
model += bytes(5000) + b'past the end'
check('past the end')
os.close(fd)
print(json.dumps({'sha256': hashlib.sha256(model).hexdigest(), 'size': len(model)}))
`

t.test('writes through an open file: stat and fstat see each at once; close, restart and kill -9 keep the bytes', async (t) => {
  const tfs = await startFs(t)
  const wrote = await tfs.sh(py(WRITER))
  t.equal(wrote.code, 0, wrote.stderr)
  const want = JSON.parse(wrote.stdout) as { sha256: string, size: number }
  const check = async (when: string): Promise<void> => {
    const r = await tfs.sh('sha256sum f | cut -d" " -f1; stat -c %s f')
    t.same(r.stdout.trim().split('\n'), [want.sha256, String(want.size)], `${when}: the bytes and the size`)
  }
  await check('after close')
  await tfs.restart()
  await check('after a restart')
  // kill -9 right after close: what close returned for is on disk, size and bytes.
  const again = await tfs.sh(py(WRITER))
  t.equal(again.code, 0, again.stderr)
  Object.assign(want, JSON.parse(again.stdout))
  await tfs.kill9()
  await tfs.mount()
  await check('after kill -9')
})

t.test('two descriptors of one file: the size is the furthest write of either', async (t) => {
  const tfs = await startFs(t)
  const r = await tfs.sh(py(`
import os, hashlib
a = os.open('g', os.O_WRONLY | os.O_CREAT, 0o644)
b = os.open('g', os.O_WRONLY)
model = bytearray()
for i in range(64):
    fd = a if i % 2 == 0 else b
    chunk = os.urandom(131072)
    os.pwrite(fd, chunk, i * 131072)
    model += chunk
    assert os.stat('g').st_size == len(model), (i, os.stat('g').st_size)
    assert os.fstat(a).st_size == os.fstat(b).st_size == len(model)
os.close(a)
os.close(b)
print(hashlib.sha256(model).hexdigest())
`))
  t.equal(r.code, 0, r.stderr)
  t.equal((await tfs.sh('sha256sum g | cut -d" " -f1')).stdout, r.stdout, 'the bytes of both')
})

t.test('a cache capacity configured while a file is open for writing applies to its next writes', async (t) => {
  const tfs = await startFs(t)
  const MiB = 1 << 20
  // 2 MiB in, then a capacity of 4 MiB is configured (live); writing on must stop at ENOSPC near
  // 4 MiB (one write already under way may still land), not run on to 16 MiB.
  const r = await tfs.sh(py(`
import os, errno, json, time
fd = os.open('h', os.O_WRONLY | os.O_CREAT, 0o644)
chunk = os.urandom(131072)
written = 0
while written < 2 * ${MiB}:
    written += os.write(fd, chunk)
with open(${JSON.stringify(tfs.configPath)}, 'a') as c:
    c.write('cacheCapacity: 4MiB\\n')
deadline = time.time() + 20
while 'cache limits changed' not in open(${JSON.stringify(path.join(tfs.root, 'daemon.log'))}).read():
    assert time.time() < deadline, 'the daemon did not take the new capacity'
    time.sleep(0.05)
err = None
try:
    while written < 16 * ${MiB}:
        written += os.write(fd, chunk)
except OSError as e:
    err = e.errno
os.close(fd)
print(json.dumps({'written': written, 'errno': err}))
`))
  t.equal(r.code, 0, r.stderr)
  const out = JSON.parse(r.stdout) as { written: number, errno: number | null }
  t.equal(out.errno, 28, 'ENOSPC')
  t.ok(out.written >= 3 * MiB && out.written <= 4 * MiB + 256 * 1024, `stopped near the capacity: ${out.written} bytes`)
  const size = await tfs.sh('stat -c %s h')
  t.equal(Number(size.stdout), out.written, 'the file holds what the writes returned')
})

// Each read first drops the kernel's cached pages of the file (fadvise DONTNEED), so it reaches
// the daemon, whose binding serves it from the content file once the handle has been read.
const READER = `
import os, hashlib
def fresh(fd, size, off):
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    return os.pread(fd, size, off)
w = os.open('r', os.O_RDWR | os.O_CREAT, 0o644)
r = os.open('r', os.O_RDONLY)
model = bytearray(os.urandom(1 << 20))
os.write(w, model)
for _ in range(2):
    assert fresh(r, 1 << 20, 0) == model, 'whole file'
os.ftruncate(w, 100000)
del model[100000:]
got = fresh(r, 1 << 20, 0)
assert got == model, ('after truncate', len(got))
assert fresh(r, 4096, 200000) == b'', 'past the new end'
more = os.urandom(300000)
os.pwrite(w, more, 150000)                     # another descriptor writes on: a hole, then bytes
model += bytes(50000) + more
assert fresh(r, 1 << 20, 0) == model, 'after a write through the other descriptor'
assert fresh(r, 1000, 160000) == more[10000:11000], 'a small read inside'
os.close(w)
os.close(r)
print(hashlib.sha256(model).hexdigest())
`

t.test('a reader sees truncates and writes made through another descriptor', async (t) => {
  const tfs = await startFs(t)
  const r = await tfs.sh(py(READER))
  t.equal(r.code, 0, r.stderr)
  t.equal((await tfs.sh('sha256sum r | cut -d" " -f1')).stdout, r.stdout, 'the file as the model')
})

t.test('a file open for reading whose object changes in S3: the next read gives the new bytes', async (t) => {
  const BUCKET = 'direct-reads'
  const { tfs, c } = await startAutoImportFs(t, BUCKET)
  const v1 = randomBytes(3 << 20)
  const v2 = randomBytes(3 << 20)
  await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'p/f.bin', Body: v1 }))
  await until('the object is imported', async () => (await tfs.sh('test -e linked/f.bin')).code === 0)
  const go = path.join(tfs.root, 'go')
  const ready = path.join(tfs.root, 'ready')
  // Reads v1 twice (loaded, then local), waits for the change, then reads the same descriptor again.
  const reader = tfs.sh(py(`
import os, hashlib, time
def whole(fd):
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    out = bytearray()
    while True:
        b = os.pread(fd, 1 << 20, len(out))
        if not b: return bytes(out)
        out += b
fd = os.open('linked/f.bin', os.O_RDONLY)
first = [hashlib.sha256(whole(fd)).hexdigest() for _ in range(2)]
open(${JSON.stringify(ready)}, 'w').close()
deadline = time.time() + 60
while not os.path.exists(${JSON.stringify(go)}):
    assert time.time() < deadline, 'no go'
    time.sleep(0.05)
print(' '.join(first + [hashlib.sha256(whole(fd)).hexdigest()]))
`))
  await until('the reader has read v1', async () => (await tfs.sh(`test -e ${ready}`)).code === 0)
  await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'p/f.bin', Body: v2 }))
  await until('the change is imported (the file is released)', async () =>
    /released/.test((await tfs.sh('getfattr --only-values -n user.s3link.hsm_state linked/f.bin')).stdout))
  await tfs.sh(`touch ${go}`)
  const r = await reader
  t.equal(r.code, 0, r.stderr)
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
  t.same(r.stdout.trim().split(' '), [sha(v1), sha(v1), sha(v2)], 'v1 twice, then v2 through the same descriptor')
})
