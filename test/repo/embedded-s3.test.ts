/**
 * The embedded S3 server, driven by the real AWS SDK v3 against the entry point run as a child
 * process (as the CLI and the other tests use it). One test per s3rver bug the server works around
 * (see the header of src/repo/embedded-s3.ts), plus a basic round trip.
 *
 * Runs the compiled entry point: build first (`npx tsc -p tsconfig.json`; `make test` does).
 */
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { createHash } from 'node:crypto';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { ListObjectsV2CommandInput } from '@aws-sdk/client-s3';

// The environment points the SDK at a CA bundle; our server speaks plain http on loopback.
delete process.env.AWS_CA_BUNDLE;

const ROOT = path.resolve(__dirname, '..', '..');
const MAIN = path.join(ROOT, 'dist', 'repo', 'embedded-s3-main.js');
const SOURCES = ['embedded-s3.ts', 'embedded-s3-main.ts'].map((f) => path.join(ROOT, 'src', 'repo', f));
const BUCKET = 'bkt';


interface Server {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
}

/** Refuses to test a stale build: the child runs dist/, not the sources. */
function checkBuild(): void {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npx tsc -p tsconfig.json`);
  const built = statSync(MAIN).mtimeMs;
  const stale = SOURCES.filter((s) => statSync(s).mtimeMs > built);
  if (stale.length) throw new Error(`dist is older than ${stale.join(', ')}: run npx tsc -p tsconfig.json`);
}

/** Starts the entry point on port 0 and reads its JSON line; the child dies in t's teardown. */
async function startServer(tt: Test, directory: string): Promise<Server> {
  // No NODE_OPTIONS: the server must work without --openssl-legacy-provider (and without tap's hooks).
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, [MAIN, '--directory', directory, '--bucket', BUCKET], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  tt.teardown(stop);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const ready = await new Promise<{ endpoint: string; port: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 10 s: ${stderr}`)), 10_000);
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${stderr}`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      clearTimeout(timer);
      resolve(JSON.parse(line) as { endpoint: string; port: number });
    });
  });
  return { ...ready, stop };
}

function client(tt: Test, endpoint: string): S3Client {
  const s3 = new S3Client({
    endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  tt.teardown(() => s3.destroy());
  return s3;
}

function tempDir(tt: Test): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 's3link-embedded-s3-'));
  tt.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs fn over items with at most `limit` in flight. */
async function forEachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: limit }, worker));
}

/** S3's listing order: UTF-8 bytes. */
const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

const put = (s3: S3Client, Key: string, Body: string | Buffer = Key) => s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body }));
const getText = async (s3: S3Client, Key: string) =>
  (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key }))).Body!.transformToString();
const del = (s3: S3Client, Key: string) => s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key }));

/** HEAD status: 200, or the error's HTTP status. */
async function headStatus(s3: S3Client, Key: string): Promise<number> {
  try {
    return (await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key })))!.$metadata.httpStatusCode ?? 0;
  } catch (err) {
    return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? -1;
  }
}

/** Every page of a V2 listing, following continuation tokens. */
async function listV2(s3: S3Client, input: Omit<ListObjectsV2CommandInput, 'Bucket'>) {
  const pages = [];
  let ContinuationToken: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, ...input, ContinuationToken }));
    pages.push(page);
    ContinuationToken = page.NextContinuationToken;
  } while (ContinuationToken);
  return {
    pages,
    keys: pages.flatMap((p) => (p.Contents ?? []).map((c) => c.Key!)),
    prefixes: pages.flatMap((p) => (p.CommonPrefixes ?? []).map((c) => c.Prefix!)),
  };
}

/** Every page of a V1 listing, following NextMarker or else the last key, as the SDKs do. */
async function listV1(s3: S3Client, Prefix: string, Delimiter?: string, MaxKeys?: number) {
  const keys: string[] = [];
  const prefixes: string[] = [];
  let Marker: string | undefined;
  for (;;) {
    const page = await s3.send(new ListObjectsCommand({ Bucket: BUCKET, Prefix, Delimiter, MaxKeys, Marker }));
    const pageKeys = (page.Contents ?? []).map((c) => c.Key!);
    keys.push(...pageKeys);
    prefixes.push(...(page.CommonPrefixes ?? []).map((c) => c.Prefix!));
    if (!page.IsTruncated) return { keys, prefixes };
    Marker = page.NextMarker ?? pageKeys[pageKeys.length - 1];
  }
}

async function expectS3Error(tt: Test, promise: Promise<unknown>, name: string, status: number): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e as { name?: string; $metadata?: { httpStatusCode?: number } },
  );
  tt.equal(err?.name, name, `fails with ${name}`);
  tt.equal(err?.$metadata?.httpStatusCode, status, `HTTP ${status}`);
}

async function multipartUpload(s3: S3Client, Key: string, parts: Buffer[]): Promise<void> {
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key, ContentType: 'application/x-test' }));
  const done = [];
  for (const [i, Body] of parts.entries()) {
    const { ETag } = await s3.send(new UploadPartCommand({ Bucket: BUCKET, Key, UploadId, PartNumber: i + 1, Body }));
    done.push({ ETag, PartNumber: i + 1 });
  }
  await s3.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key, UploadId, MultipartUpload: { Parts: done } }));
}

// Usually 10-15 s; leave room for a loaded machine running other test files in parallel.
t.setTimeout(90_000);

// One server for all tests but the restart test; each test uses its own key prefix.
let server: Server;
let s3: S3Client;
let dataDir: string;

t.before(async () => {
  checkBuild();
  dataDir = tempDir(t);
  server = await startServer(t, dataDir);
  s3 = client(t, server.endpoint);
});

t.test('round trip: put, get, head, range, copy, multipart, delete', async (t) => {
  t.match(server.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/, 'endpoint on loopback');
  const Metadata = { 'file-permissions': '0100644' };
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'rt/hello.txt', Body: 'hello world', ContentType: 'text/plain', Metadata }));
  const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'rt/hello.txt' }));
  t.equal(await got.Body!.transformToString(), 'hello world');
  t.equal(got.ContentType, 'text/plain');
  t.same(got.Metadata, Metadata, 'user metadata kept');
  const range = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'rt/hello.txt', Range: 'bytes=6-10' }));
  t.equal(await range.Body!.transformToString(), 'world', 'range GET');

  // Characters s3rver's CopyObject could not decode from x-amz-copy-source.
  const odd = 'rt/a+b c#d?e&f=g,h:i;j@k$l%m.txt';
  await put(s3, odd, 'odd');
  await s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'rt/copy+1', CopySource: encodeURIComponent(`${BUCKET}/${odd}`) }));
  t.equal(await getText(s3, 'rt/copy+1'), 'odd', 'copy of a key with reserved characters');
  const meta = await s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'rt/copy-meta', CopySource: `${BUCKET}/rt/hello.txt` }));
  t.ok(meta.CopyObjectResult?.ETag, 'copy returns an ETag');
  const copied = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'rt/copy-meta' }));
  t.same(copied.Metadata, Metadata, 'copy keeps metadata');

  const parts = [Buffer.alloc(5 * 1024 * 1024, 'a'), Buffer.from('tail')];
  await multipartUpload(s3, 'rt/big.bin', parts);
  const big = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'rt/big.bin' }));
  t.equal(big.ContentType, 'application/x-test', 'multipart keeps the content type');
  t.ok(Buffer.from(await big.Body!.transformToByteArray()).equals(Buffer.concat(parts)), 'multipart content');

  // Plain s3rver's process died on this (unhandled read error on the missing part's file).
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'rt/broken' }));
  const { ETag } = await s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: 'rt/broken', UploadId, PartNumber: 1, Body: 'p1' }));
  const parts2 = [{ ETag, PartNumber: 1 }, { ETag: '"0123"', PartNumber: 2 }];
  const complete = new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: 'rt/broken', UploadId, MultipartUpload: { Parts: parts2 } });
  await expectS3Error(t, s3.send(complete), 'InvalidPart', 400);

  const listed = (await listV2(s3, { Prefix: 'rt/' })).keys;
  t.same(listed, [odd, 'rt/big.bin', 'rt/copy+1', 'rt/copy-meta', 'rt/hello.txt'], 'listed');
  await del(s3, 'rt/hello.txt');
  t.equal(await headStatus(s3, 'rt/hello.txt'), 404, 'gone after DELETE');
});

t.test('bug 1: listings over 1,000 keys page with continuation tokens (no DES)', async (t) => {
  // Just over 1,000 keys: the SDK's own CPU cost per request (~2 ms, more on a busy machine) is
  // what makes more keys slow. Listing is cheap; 8 PUTs in flight is the fastest on 2 CPUs.
  const keys = Array.from({ length: 1100 }, (_, i) => `many/k${String(i).padStart(5, '0')}`);
  await forEachLimit(keys, 8, (k) => put(s3, k));

  const v2 = await listV2(s3, { Prefix: 'many/' });
  t.same(v2.pages.map((p) => p.KeyCount), [1000, 100], 'pages of at most 1,000');
  t.same(v2.pages.map((p) => p.IsTruncated), [true, false]);
  t.same(v2.keys, keys, 'every key once, in order');

  // Three pages: the middle one both starts from a token and ends with one.
  const small = await listV2(s3, { Prefix: 'many/', MaxKeys: 400, StartAfter: 'many/k00049' });
  t.same(small.pages.map((p) => p.KeyCount), [400, 400, 250], 'MaxKeys below 1,000 respected');
  t.same(small.keys, keys.slice(50), 'StartAfter then tokens');

  t.same((await listV1(s3, 'many/')).keys, keys, 'V1 pages by marker');

  await expectS3Error(t, s3.send(new ListObjectsV2Command({ Bucket: BUCKET, ContinuationToken: 'garbage' })), 'InvalidArgument', 400);
});

t.test('bug 1 (ordering): pages follow S3 byte order, not directory order', async (t) => {
  // s3rver walked `order/a/` before `order/a-b` and before the key `order/a`, so a page boundary
  // between them lost keys. `-` (0x2d) < `/` (0x2f) < `0` (0x30); U+FFFD < U+1F600 in UTF-8.
  const keys = ['order/a', 'order/a-b', 'order/a/b', 'order/a/b/c', 'order/a0', 'order/\uFFFD', 'order/\u{1F600}'];
  for (const k of [...keys].reverse()) await put(s3, k);
  t.same((await listV2(s3, { Prefix: 'order/', MaxKeys: 1 })).keys, [...keys].sort(byBytes), 'V2, one key per page');
  t.same((await listV1(s3, 'order/', undefined, 2)).keys, [...keys].sort(byBytes), 'V1, two keys per page');
});

t.test('bug 2: key components of 255 and 300 bytes', async (t) => {
  const c255 = 'é'.repeat(127) + 'x'; // 255 bytes, 128 characters
  const c300 = 'z'.repeat(300);
  t.equal(Buffer.byteLength(c255), 255);
  const keys = [`long/${c255}`, `long/${c255}/file`, `long/${c300}`, `long/${c300}/${c300}`, `long/short/${c300}`];

  for (const k of keys) await put(s3, k);
  for (const k of keys) {
    t.equal(await getText(s3, k), k, `GET ${k.length} chars`);
    t.equal((await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: k }))).ContentLength, Buffer.byteLength(k), 'HEAD');
  }

  const copy = `long/${c300}/copy-${c255}`;
  await s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: copy, CopySource: encodeURIComponent(`${BUCKET}/long/${c300}/${c300}`) }));
  t.equal(await getText(s3, copy), `long/${c300}/${c300}`, 'CopyObject between long keys');

  const mp = `long/${c255}/mp-${c300}`;
  await multipartUpload(s3, mp, [Buffer.from('part1-'), Buffer.from('part2')]);
  t.equal(await getText(s3, mp), 'part1-part2', 'multipart to a long key');

  const all = [...keys, copy, mp].sort(byBytes);
  t.same((await listV2(s3, { Prefix: 'long/' })).keys, all, 'listing returns the original keys');
  t.same((await listV2(s3, { Prefix: 'long/', MaxKeys: 2 })).keys, all, 'also across pages');
  const top = await listV2(s3, { Prefix: 'long/', Delimiter: '/' });
  t.same(top.keys, [`long/${c255}`, `long/${c300}`].sort(byBytes), 'delimiter: objects');
  t.same(top.prefixes, [`long/${c255}/`, `long/${c300}/`, 'long/short/'].sort(byBytes), 'delimiter: common prefixes');
  const below = await listV2(s3, { Prefix: `long/${c300}/`, Delimiter: '/' });
  t.same(below.keys, [`long/${c300}/${c300}`, copy].sort(byBytes), 'delimiter below a long component');

  for (const k of all) await del(s3, k);
  for (const k of all) t.equal(await headStatus(s3, k), 404, 'deleted');
  t.same((await listV2(s3, { Prefix: 'long/' })).keys, [], 'listing empty after DELETE');
  const overflow = path.join(dataDir, BUCKET, '._S3rver_s3link-keys');
  t.same(existsSync(overflow) ? readdirSync(overflow) : [], [], 'no files left behind');
});

t.test('bug 2 (odd components): empty, `.` and `..` components stay inside the bucket', async (t) => {
  const keys = ['odd//double', 'odd/./dot', 'odd/../dotdot', 'odd/x/', 'odd/..', '/leading', '../escape'];
  for (const k of keys) await put(s3, k);
  for (const k of keys) t.equal(await getText(s3, k), k, `GET ${k}`);
  t.same((await listV2(s3, {})).keys.filter((k) => keys.includes(k)), [...keys].sort(byBytes), 'listed as written');
  t.equal(await headStatus(s3, 'odd/double'), 404, '`odd//double` is not `odd/double`');
  t.notOk(readdirSync(dataDir).some((f) => f.startsWith('escape')), 'nothing written outside the bucket');
  for (const k of keys) await del(s3, k);
  t.same((await listV2(s3, { Prefix: 'odd' })).keys, [], 'all deleted');
});

t.test('bug 2 (persistence): long keys survive a restart', async (t) => {
  const dir = tempDir(t);
  const long = `p/${'q'.repeat(300)}/${'r'.repeat(254)}`;
  const first = await startServer(t, dir);
  await put(client(t, first.endpoint), long, 'kept');
  await first.stop();
  const second = await startServer(t, dir);
  const s3b = client(t, second.endpoint);
  t.same((await listV2(s3b, { Prefix: 'p/' })).keys, [long], 'listed after restart');
  t.equal(await getText(s3b, long), 'kept', 'readable after restart');
});

t.test('bug 3: keys over 1,024 bytes get 400 KeyTooLongError; 1,024 bytes work', async (t) => {
  const over = 'k/' + 'a'.repeat(1023); // 1,025 bytes
  const overMultibyte = 'é'.repeat(512) + 'x'; // 1,025 bytes but 513 characters
  await expectS3Error(t, put(s3, over), 'KeyTooLongError', 400);
  await expectS3Error(t, put(s3, overMultibyte), 'KeyTooLongError', 400);
  await expectS3Error(t, s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: over })), 'KeyTooLongError', 400);

  const native = 'k/' + ('b'.repeat(250) + '/').repeat(4) + 'c'.repeat(18); // plain directories
  const overflow = 'é'.repeat(512); // one 1,024-byte component
  for (const k of [native, overflow]) {
    t.equal(Buffer.byteLength(k), 1024);
    await put(s3, k);
    t.equal(await getText(s3, k), k, 'a 1,024-byte key round-trips');
  }
  t.same((await listV2(s3, { Prefix: 'k/' })).keys, [native], 'listed');
  t.ok((await listV2(s3, {})).keys.includes(overflow), 'listed');
  for (const k of [native, overflow]) await del(s3, k);
  t.equal(await headStatus(s3, native), 404);
});

t.test('bug 4: delimiter listings report common prefixes whose objects lie deeper', async (t) => {
  for (const k of ['deep/a/b/c/d', 'deep/a/e/f/g/h', 'deep/a/e/i', 'deep/a/x', 'deep/z/y/w']) await put(s3, k);

  const a = await listV2(s3, { Prefix: 'deep/a/', Delimiter: '/' });
  t.same(a.prefixes, ['deep/a/b/', 'deep/a/e/'], 'deep/a/b/ holds only deep/a/b/c/d');
  t.same(a.keys, ['deep/a/x']);
  t.same((await listV2(s3, { Prefix: 'deep/', Delimiter: '/' })).prefixes, ['deep/a/', 'deep/z/']);
  t.same((await listV2(s3, { Prefix: 'deep/a/b', Delimiter: '/' })).prefixes, ['deep/a/b/'], 'prefix not ending in the delimiter');

  // Common prefixes count toward MaxKeys (s3rver counted objects only), so a page may end on one;
  // the next page must not repeat it.
  const paged = await listV2(s3, { Prefix: 'deep/a/', Delimiter: '/', MaxKeys: 1 });
  const entries = paged.pages.map((p) => [...(p.CommonPrefixes ?? []).map((c) => c.Prefix), ...(p.Contents ?? []).map((c) => c.Key)]);
  t.same(entries, [['deep/a/b/'], ['deep/a/e/'], ['deep/a/x']], 'one entry per page');
  t.same(paged.pages.map((p) => p.KeyCount), [1, 1, 1], 'KeyCount counts common prefixes');
  t.same(await listV1(s3, 'deep/a/', '/', 1), { keys: ['deep/a/x'], prefixes: ['deep/a/b/', 'deep/a/e/'] }, 'V1 pages by NextMarker');
});

t.test('concurrent PUT, GET and DELETE in one directory neither fail nor crash the server', async (t) => {
  // Each key sits alone in its directory, so every DELETE removes the directories the next PUT
  // needs. Plain s3rver dies within a few rounds (unhandled ENOENT on its write stream).
  const key = (i: number) => `race/a/b/c/k${i}`;
  for (let i = 0; i < 100; i++) {
    await Promise.all([
      put(s3, key(i)),
      del(s3, key(i - 1)),
      getText(s3, key(i - 1)).catch((err: { name?: string }) => {
        if (err.name !== 'NoSuchKey') throw err;
      }),
    ]);
  }
  t.same((await listV2(s3, { Prefix: 'race/' })).keys, [key(99)], 'only the last key is left');
  t.equal(await getText(s3, key(99)), key(99), 'server still answers');
});

t.test('an object and its metadata appear together: no HEAD sees the new object with old or no metadata', async (t) => {
  // s3rver keeps content and metadata in separate files, renamed into place one after the other.
  // Even rounds PUT new content (metadata `version`), odd ones copy it onto itself with new metadata.
  const key = 'atomic/f.txt';
  const body = (v: number) => `body ${v}`;
  const etagOf = (v: number) => `"${createHash('md5').update(body(v)).digest('hex')}"`;
  const bad: string[] = [];
  let seen = 0;
  for (let v = 0; v < 40; v++) {
    const write = v % 2 === 0
      ? s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body(v), Metadata: { version: String(v) } }))
      : s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: key, CopySource: `${BUCKET}/${key}`, MetadataDirective: 'REPLACE', Metadata: { version: String(v) } }));
    const content = v - (v % 2); // the PUT round whose content is current or being put
    const reads = Array.from({ length: 8 }, async () => {
      const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key })).catch(() => undefined);
      if (head === undefined) return;
      seen++;
      const version = Number(head.Metadata?.version);
      // The content of round c may carry the metadata of round c or of the copy after it.
      const ok = [content - 2, content].some((c) => c >= 0 && head.ETag === etagOf(c) && (version === c || version === c + 1));
      if (!ok) bad.push(`${head.ETag} with version ${head.Metadata?.version}`);
    });
    await Promise.all([write, ...reads]);
  }
  t.ok(seen > 100, `${seen} HEADs answered`);
  t.same(bad, [], 'every answer carries the metadata written with its content');
});

t.test('a GET racing a PUT of its key answers one version: its bytes match its ETag and length', async (t) => {
  // getObject reads the metadata, then opens the content file: a PUT renaming new content into
  // place between the two gave the new bytes with the old ETag and Content-Length.
  const key = 'atomic/g.bin';
  const body = (v: number) => Buffer.alloc(1000 + 7919 * (v % 5), v % 251);
  const bad: string[] = [];
  let seen = 0;
  for (let v = 0; v < 60; v++) {
    const write = s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body(v) }));
    const reads = Array.from({ length: 8 }, async () => {
      const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key })).catch(() => undefined);
      if (got === undefined) return;
      const bytes = Buffer.from(await got.Body!.transformToByteArray().catch(() => new Uint8Array()));
      seen++;
      const etag = `"${createHash('md5').update(bytes).digest('hex')}"`;
      if (etag !== got.ETag || bytes.length !== got.ContentLength) bad.push(`${bytes.length} bytes (${etag}) under ${got.ContentLength} bytes, ${got.ETag}, round ${v}`);
    });
    await Promise.all([write, ...reads]);
  }
  t.ok(seen > 100, `${seen} GETs answered`);
  t.same(bad, [], 'every answer is one version, whole');
});
