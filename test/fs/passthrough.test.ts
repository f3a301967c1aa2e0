// Files the kernel serves itself from their local content (FUSE passthrough, src/fs/passthrough.ts):
// a read-only open of a local file nothing else has open, and every open of it while that one is
// open. What a user must see: the same bytes as through the daemon (read, mmap), /metrics counting
// such opens (none with `passthrough: false`), writes through a descriptor opened meanwhile seen
// by stat and by the reader at once and kept across close, fsync + kill -9 and restart, and an
// object changed in S3 reaching open descriptors as a rewrite, front to back, never as a hole.
import t from 'tap'
import path from 'node:path'
import fs from 'node:fs'
import os from 'node:os'
import zlib from 'node:zlib'
import { randomBytes, createHash } from 'node:crypto'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { sh, startFs, type TestFs } from '../fixtures/harness'
import { until } from '../fixtures/until'
import { startAutoImportFs } from '../fixtures/linked'

const py = (script: string): string => `python3 - <<'EOF'\n${script}\nEOF`
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/**
 * Whether this kernel can pass files through (Linux 6.9+ built with CONFIG_FUSE_PASSTHROUGH; we
 * run as root). Where it cannot, the opens below go through the daemon: same bytes, none counted.
 */
function kernelPassesThrough (): boolean {
  const [major, minor] = os.release().split('.').map(Number)
  if (major < 6 || (major === 6 && minor < 9) || process.getuid?.() !== 0) return false
  try {
    return /^CONFIG_FUSE_PASSTHROUGH=y$/m.test(zlib.gunzipSync(fs.readFileSync('/proc/config.gz')).toString())
  } catch {
    return true // no config to read: a 6.9+ kernel is expected to have it
  }
}
const SUPPORTED = kernelPassesThrough()

async function passedThrough (tfs: TestFs): Promise<number> {
  const res = await fetch(tfs.apiUrl() + '/metrics', { headers: { authorization: `Bearer ${tfs.credentials().token}` } })
  const m = /^s3link_passthrough_opens_total (\S+)$/m.exec(await res.text())
  return Number(m?.[1] ?? NaN)
}

// Writes a file, then reads it in a new process by read(2) and by mmap: prints the three sha256s.
const READS = `
import os, hashlib, mmap, subprocess, time
data = os.urandom((8 << 20) + 123)
with open('a', 'wb') as f: f.write(data)
time.sleep(0.2)   # the kernel tells the daemon of a close after close(2) returns
read = subprocess.run(['sha256sum', 'a'], capture_output=True, text=True, check=True).stdout.split()[0]
with open('a', 'rb') as f:
    mapped = hashlib.sha256(mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)).hexdigest()
print(hashlib.sha256(data).hexdigest(), read, mapped)
`

t.test('a local file is read by the kernel itself: the same bytes by read and mmap; /metrics counts the opens, none when off', async (t) => {
  const tfs = await startFs(t)
  const on = await tfs.sh(py(READS))
  t.equal(on.code, 0, on.stderr)
  const [want, ...got] = on.stdout.trim().split(' ')
  t.same(got, [want, want], 'read(2) and mmap give the bytes written')
  if (SUPPORTED) t.ok(await passedThrough(tfs) >= 2, 'the two read-only opens passed through')
  else t.match(tfs.readLog(), /does not pass reads and writes through/, 'the daemon says why nothing passes through')

  await tfs.configure({ passthrough: false })
  await tfs.restart()
  const sum = await tfs.sh('sha256sum a | cut -d" " -f1; cat a > /dev/null')
  t.equal(sum.stdout.trim(), want, 'the same bytes through the daemon')
  t.equal(await passedThrough(tfs), 0, 'no open passed through')
})

t.test('a state directory on a stacked file system (overlayfs, as in a container): reads go through the daemon, and the log says why', { skip: !SUPPORTED && 'this kernel cannot pass files through anyway' }, async (t) => {
  const tfs = await startFs(t, { mount: false })
  // The initialised state directory becomes the lower layer of an overlay mounted over itself.
  const layers = path.join(tfs.root, 'layers')
  await fs.promises.mkdir(path.join(layers, 'upper'), { recursive: true })
  await fs.promises.mkdir(path.join(layers, 'work'))
  const overlay = await sh(`mount -t overlay overlay -o lowerdir=${tfs.stateDir},upperdir=${layers}/upper,workdir=${layers}/work ${tfs.stateDir}`)
  t.equal(overlay.code, 0, overlay.stderr)
  const unmount = async (): Promise<void> => {
    await tfs.stop()
    await sh(`umount ${tfs.stateDir}`)
  }
  t.teardown(unmount)
  await tfs.mount()
  const r = await tfs.sh(py(READS))
  t.equal(r.code, 0, r.stderr)
  const [want, ...got] = r.stdout.trim().split(' ')
  t.same(got, [want, want], 'read(2) and mmap give the bytes written')
  t.equal(await passedThrough(tfs), 0, 'no open passed through')
  t.match(tfs.readLog(), /does not pass reads and writes through to local files here \(ELOOP\)/, 'the daemon says why')
  await unmount()
})

// A reader opens first (so its open passes through), then a writer: the kernel makes the writer's
// open pass through too, so the daemon never sees its writes and must take them from the content
// file. Each write must show in stat(2), in the reader's fstat(2) and in what the reader reads.
const WRITER = (ready: string, go: string): string => `
import os, hashlib, json, time
data = bytearray(os.urandom(1 << 20))
with open('w', 'wb') as f: f.write(data)
time.sleep(0.2)   # the kernel tells the daemon of a close after close(2) returns
r = os.open('w', os.O_RDONLY)
w = os.open('w', os.O_RDWR)
before = os.stat('w').st_mtime_ns
time.sleep(0.02)
for i in range(20):
    b = os.urandom(70000)
    off = len(data) if i % 2 else i * 4096
    assert os.pwrite(w, b, off) == len(b)
    data[off:off + len(b)] = b
    assert os.stat('w').st_size == len(data), (i, 'stat', os.stat('w').st_size, len(data))
    assert os.fstat(r).st_size == len(data), (i, 'fstat of the reader')
    assert os.pread(r, len(b), off) == b, (i, 'the reader reads the write')
assert os.stat('w').st_mtime_ns > before, 'the writes moved mtime'
last = os.urandom(3000)
os.pwrite(w, last, len(data))   # no stat after this one: fsync alone must take it
data += last
os.fsync(w)
print(json.dumps({'sha256': hashlib.sha256(data).hexdigest(), 'size': len(data)}), flush=True)
open(${JSON.stringify(ready)}, 'w').close()
deadline = time.time() + 60
while not os.path.exists(${JSON.stringify(go)}) and time.time() < deadline: time.sleep(0.05)
os._exit(0)   # the daemon is dead by now: nothing more to close
`

t.test('a file opened for writing while the kernel serves a reader of it: stat and the reader see each write; fsync + kill -9, close and restart keep them', async (t) => {
  const tfs = await startFs(t)
  const ready = path.join(tfs.root, 'ready')
  const go = path.join(tfs.root, 'go')
  const writer = tfs.sh(py(WRITER(ready, go)))
  await until('the writer has fsynced', async () => (await tfs.sh(`test -e ${ready}`)).code === 0, 30_000)
  t.ok(!SUPPORTED || await passedThrough(tfs) >= 2, 'the reader\'s and the writer\'s opens passed through')
  await tfs.kill9()
  await fs.promises.writeFile(go, '') // not from inside the dead mount
  const w = await writer
  t.equal(w.code, 0, w.stderr)
  const want = JSON.parse(w.stdout) as { sha256: string, size: number }
  await tfs.mount()
  const check = async (file: string, when: string, expect: { sha256: string, size: number }): Promise<void> => {
    const r = await tfs.sh(`sha256sum ${file} | cut -d" " -f1; stat -c %s ${file}`)
    t.same(r.stdout.trim().split('\n'), [expect.sha256, String(expect.size)], `${when}: the bytes and the size`)
  }
  await check('w', 'after fsync and kill -9', want)

  // The same through close(2) alone, then a restart.
  const closed = await tfs.sh(py(`
import os, hashlib, time
data = bytearray(open('w', 'rb').read())
time.sleep(0.2)
r = os.open('w', os.O_RDONLY)
w = os.open('w', os.O_WRONLY | os.O_APPEND)
tail = os.urandom(5000)
os.write(w, tail)
data += tail
os.close(w)
assert os.pread(r, 5000, len(data) - 5000) == tail
os.close(r)
print(hashlib.sha256(data).hexdigest(), len(data))
`))
  t.equal(closed.code, 0, closed.stderr)
  const [sum, size] = closed.stdout.trim().split(' ')
  await check('w', 'after close', { sha256: sum, size: Number(size) })
  await tfs.restart()
  await check('w', 'after a restart', { sha256: sum, size: Number(size) })
})

t.test('an object changed in S3 while the kernel serves its file: open descriptors read the rewrite front to back, a new open reads it whole', async (t) => {
  const BUCKET = 'passthrough'
  const { tfs, c } = await startAutoImportFs(t, BUCKET)
  const v1 = randomBytes(3 << 20)
  const v2 = randomBytes(5 << 20)
  await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'p/f.bin', Body: v1 }))
  await until('the object is imported', async () => (await tfs.sh('test -e linked/f.bin')).code === 0)
  t.equal((await tfs.sh('cat linked/f.bin > /dev/null')).code, 0)
  await until('loaded: the file is local', async () =>
    !/released/.test((await tfs.sh('getfattr --only-values -n user.s3link.hsm_state linked/f.bin')).stdout))
  await fs.promises.writeFile(path.join(tfs.root, 'v2.hex'), v2.toString('hex'))
  const before = await passedThrough(tfs)
  const ready = path.join(tfs.root, 'ready')
  // Every read through the one descriptor must give bytes of v1 or of v2 at that offset (a read
  // racing the rewrite may mix them, as on a local disk; a hole would read as zeros), until the
  // whole file reads as v2.
  const reader = tfs.sh(py(`
import os, hashlib, time
v2 = bytes.fromhex(open(${JSON.stringify(path.join(tfs.root, 'v2.hex'))}).read())
v1 = None
def whole(fd):
    out = bytearray()
    while True:
        b = os.pread(fd, 1 << 20, len(out))
        if not b: return bytes(out)
        at = len(out)
        assert (v1 is None or b == v1[at:at + len(b)]) or b == v2[at:at + len(b)], ('bytes of neither object at', at, len(b))
        out += b
fd = os.open('linked/f.bin', os.O_RDONLY)
v1 = whole(fd)
open(${JSON.stringify(ready)}, 'w').close()
deadline = time.time() + 60
while True:
    b = whole(fd)
    if b == v2: break
    assert time.time() < deadline, ('the rewrite did not finish', len(b))
print(hashlib.sha256(v1).hexdigest(), hashlib.sha256(b).hexdigest())
`))
  await until('the reader has read v1', async () => (await tfs.sh(`test -e ${ready}`)).code === 0)
  t.ok(!SUPPORTED || await passedThrough(tfs) > before, 'the reader\'s open passed through')
  await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'p/f.bin', Body: v2 }))
  // An open made after the change while the reader's is open passes through too: it waits for all of v2.
  await until('a new open reads the new object whole', async () =>
    (await tfs.sh('sha256sum linked/f.bin | cut -d" " -f1')).stdout.trim() === sha(v2), 30_000)
  const r = await reader
  t.equal(r.code, 0, r.stderr)
  const [old, now] = r.stdout.trim().split(' ')
  t.same([old, now], [sha(v1), sha(v2)], 'v1, then v2 through the same descriptor')
})
