/**
 * `node dist/bench/s3tool.js JSON`: the S3 side of the import benchmarks, run as a child process so
 * that the benchmark's own event loop never carries measured traffic. One operation per call, its
 * result as one JSON line on stdout:
 *
 *   put       N small objects PREFIX/dNN/fNNNNNN with bounded parallelism (populating; with BYTES
 *             bodies, the small-file export's reference)
 *   upload    one local file through lib-storage's Upload with a given part size and queue size,
 *             as export uploads a big file (its reference)
 *   putbig    one object of MIB MiB whose every MiB starts with its index (readers can check where
 *             their bytes came from), then server-side copies of it
 *   list      ListObjectsV2 over a prefix, every page: the raw listing rate (the import's reference);
 *             also counts the listed bytes
 *   listhead  the same listing plus a HEAD per object, 32 in flight with one page of lookahead, as
 *             the batch import does minus the namespace: where an import's time goes
 *   get       GetObject of one key, streamed to nowhere: the raw GET throughput (the cold read's
 *             reference); with md5, the body's MD5 too (checks what export wrote); with toFile,
 *             written into that new local file instead, as the loader writes content files
 *             (closed, then removed): what any lazy load that keeps the content locally must do;
 *             with overCached too, written over a file of the object's size whose pages are
 *             already in the page cache (written and flushed before the GET): the same GET and
 *             writes without allocating page-cache memory, which some hosts make costly
 *
 * Every result carries `cpuSeconds`, this process's user + system CPU time (a GET over a cached
 * file: from the GET on, without the file's preparation).
 *
 * The client is built as the daemon builds it for a bucket of cloud "other" (path style, checksums
 * only when required), so both sides talk to the server the same way.
 */
import http from 'node:http'
import crypto from 'node:crypto'
import fs from 'node:fs'
import { Readable } from 'node:stream'
import { CopyObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { mapLimit } from '../util/pool'

export const MiB = 1 << 20

interface Common { endpoint: string, bucket: string, inFlight?: number }

export type S3ToolOp =
  | Common & { op: 'put', prefix: string, dirs: number, perDir: number, bytes?: number }
  | Common & { op: 'upload', key: string, file: string, partSize: number, queueSize: number }
  | Common & { op: 'putbig', key: string, mib: number, copies: string[] }
  | Common & { op: 'list', prefix: string, delimiter?: string }
  | Common & { op: 'listhead', prefix: string }
  | Common & { op: 'get', key: string, md5?: boolean, toFile?: string, overCached?: boolean }

/** An operation without the server's address (the caller adds it). */
export type S3ToolRequest = { [K in S3ToolOp['op']]: Omit<Extract<S3ToolOp, { op: K }>, 'endpoint' | 'bucket'> }[S3ToolOp['op']]

export const dirKey = (prefix: string, d: number): string => `${prefix}d${String(d).padStart(2, '0')}/`
export const fileKey = (prefix: string, d: number, f: number): string => `${dirKey(prefix, d)}f${String(f).padStart(6, '0')}`

function client (o: Common): S3Client {
  return new S3Client({
    endpoint: o.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    // The SDK's default pool (50 sockets) would cap the parallelism asked for.
    requestHandler: { httpAgent: new http.Agent({ keepAlive: true, maxSockets: Math.max(50, o.inFlight ?? 0) }) }
  })
}

const seconds = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e9

async function put (c: S3Client, o: Extract<S3ToolOp, { op: 'put' }>): Promise<object> {
  const start = process.hrtime.bigint()
  const keys = Array.from({ length: o.dirs * o.perDir }, (_, i) => fileKey(o.prefix, Math.floor(i / o.perDir), i % o.perDir))
  const body = o.bytes === undefined ? undefined : crypto.randomBytes(o.bytes)
  await mapLimit(keys, o.inFlight ?? 64, async (key) => {
    await c.send(new PutObjectCommand({ Bucket: o.bucket, Key: key, Body: body ?? key.slice(-7) + '\n' }))
  })
  return { objects: keys.length, seconds: seconds(start) }
}

/** As src/repo/uploads.ts putFile sends a file above one part (minus the POSIX metadata). */
async function upload (c: S3Client, o: Extract<S3ToolOp, { op: 'upload' }>): Promise<object> {
  const start = process.hrtime.bigint()
  const { size } = await fs.promises.stat(o.file)
  const up = new Upload({
    client: c,
    params: { Bucket: o.bucket, Key: o.key, Body: fs.createReadStream(o.file, { start: 0, end: size - 1, highWaterMark: 1 << 20 }) },
    partSize: o.partSize,
    queueSize: o.queueSize,
    leavePartsOnError: false
  })
  const out = await up.done() as { ETag?: string }
  return { bytes: size, seconds: seconds(start), etag: out.ETag }
}

/** MiB i of the big object: one random MiB with i in its first 8 bytes (little-endian). */
function bigBody (mib: number): Readable {
  const base = Buffer.alloc(MiB)
  for (let i = 0; i < MiB; i += 4) base.writeUInt32LE((Math.random() * 0x100000000) >>> 0, i)
  return Readable.from((function * () {
    for (let i = 0; i < mib; i++) {
      const block = Buffer.from(base)
      block.writeBigUInt64LE(BigInt(i), 0)
      yield block
    }
  })())
}

async function putBig (c: S3Client, o: Extract<S3ToolOp, { op: 'putbig' }>): Promise<object> {
  const start = process.hrtime.bigint()
  await c.send(new PutObjectCommand({ Bucket: o.bucket, Key: o.key, Body: bigBody(o.mib), ContentLength: o.mib * MiB }))
  for (const copy of o.copies) {
    await c.send(new CopyObjectCommand({ Bucket: o.bucket, Key: copy, CopySource: `${o.bucket}/${o.key}` }))
  }
  return { bytes: o.mib * MiB, objects: 1 + o.copies.length, seconds: seconds(start) }
}

async function * pages (c: S3Client, bucket: string, prefix: string, delimiter?: string): AsyncGenerator<{ keys: string[], bytes: number, prefixes: number }> {
  let token: string | undefined
  do {
    const page = await c.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: delimiter, ContinuationToken: token, MaxKeys: 1000 }))
    const contents = page.Contents ?? []
    yield { keys: contents.map((o) => o.Key ?? ''), bytes: contents.reduce((n, o) => n + (o.Size ?? 0), 0), prefixes: page.CommonPrefixes?.length ?? 0 }
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined
  } while (token !== undefined)
}

async function list (c: S3Client, o: Extract<S3ToolOp, { op: 'list' }>): Promise<object> {
  const start = process.hrtime.bigint()
  let objects = 0
  let bytes = 0
  let prefixes = 0
  let calls = 0
  for await (const page of pages(c, o.bucket, o.prefix, o.delimiter)) {
    objects += page.keys.length
    bytes += page.bytes
    prefixes += page.prefixes
    calls++
  }
  return { objects, bytes, prefixes, calls, seconds: seconds(start) }
}

async function listHead (c: S3Client, o: Extract<S3ToolOp, { op: 'listhead' }>): Promise<object> {
  const start = process.hrtime.bigint()
  let listWait = 0
  let objects = 0
  const it = pages(c, o.bucket, o.prefix)
  let pending = it.next()
  while (true) {
    const waited = process.hrtime.bigint()
    const page = await pending
    listWait += seconds(waited)
    if (page.done === true) break
    pending = it.next()
    pending.catch(() => undefined)
    await mapLimit(page.value.keys, o.inFlight ?? 32, async (key) => {
      await c.send(new HeadObjectCommand({ Bucket: o.bucket, Key: key }))
    })
    objects += page.value.keys.length
  }
  // listWait: time spent waiting for a listing page the HEADs had not hidden.
  return { objects, seconds: seconds(start), listWait }
}

async function get (c: S3Client, o: Extract<S3ToolOp, { op: 'get' }>): Promise<object> {
  try {
    if (o.overCached === true && o.toFile !== undefined) await cachedFile(c, o.bucket, o.key, o.toFile)
    const cpu = process.cpuUsage()
    const start = process.hrtime.bigint()
    const out = await c.send(new GetObjectCommand({ Bucket: o.bucket, Key: o.key }))
    const firstByte = seconds(start)
    const hash = o.md5 === true ? crypto.createHash('md5') : undefined
    let bytes = 0
    const file = o.toFile === undefined ? undefined : await BatchedFile.open(o.toFile, o.overCached === true)
    for await (const chunk of out.Body as AsyncIterable<Uint8Array>) {
      bytes += chunk.byteLength
      hash?.update(chunk)
      await file?.append(chunk)
    }
    await file?.close()
    const used = process.cpuUsage(cpu)
    return { bytes, seconds: seconds(start), firstByte, md5: hash?.digest('hex'), cpuSeconds: (used.user + used.system) / 1e6 }
  } finally {
    if (o.toFile !== undefined) await fs.promises.rm(o.toFile, { force: true })
  }
}

/** A new file of the object's size, its pages written, flushed (no writeback left to overlap the GET) and cached. */
async function cachedFile (c: S3Client, bucket: string, key: string, file: string): Promise<void> {
  const { ContentLength: size = 0 } = await c.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))
  const fd = await fs.promises.open(file, 'wx')
  try {
    const zeros = Buffer.alloc(MiB)
    for (let at = 0; at < size; at += MiB) await fd.write(zeros, 0, Math.min(MiB, size - at), at)
    await fd.datasync()
  } finally {
    await fd.close()
  }
}

/**
 * A new local file written as the daemon's loader writes content files (src/content/loader.ts):
 * 1 MiB writes, 8 in flight. fs.WriteStream writes every 64 KiB chunk on its own and cost 3-4
 * times the CPU, which overstated what keeping the bytes costs.
 */
class BatchedFile {
  private static readonly BATCH = 1 << 20
  private static readonly IN_FLIGHT = 8
  /** Batches written and free again: reused, as the loader's are. */
  private readonly free: Buffer[] = []
  private batch: Buffer = Buffer.allocUnsafeSlow(BatchedFile.BATCH)
  private filled = 0
  private pos = 0
  private readonly writes = new Set<Promise<unknown>>()

  private constructor (private readonly fd: fs.promises.FileHandle) {}

  /** A new file, or (overwrite) one that exists, written from its start without truncating it. */
  static async open (file: string, overwrite: boolean): Promise<BatchedFile> {
    return new BatchedFile(await fs.promises.open(file, overwrite ? 'r+' : 'wx'))
  }

  async append (chunk: Uint8Array): Promise<void> {
    for (let used = 0; used < chunk.byteLength;) {
      const n = Math.min(chunk.byteLength - used, BatchedFile.BATCH - this.filled)
      this.batch.set(chunk.subarray(used, used + n), this.filled)
      this.filled += n
      used += n
      if (this.filled === BatchedFile.BATCH) await this.flush()
    }
  }

  async close (): Promise<void> {
    await this.flush()
    await Promise.all(this.writes)
    await this.fd.close()
  }

  private async flush (): Promise<void> {
    if (this.filled > 0) {
      const buf = this.batch
      const write = this.fd.write(buf, 0, this.filled, this.pos).finally(() => { this.writes.delete(write); this.free.push(buf) })
      this.writes.add(write)
      this.pos += this.filled
      this.batch = this.free.pop() ?? Buffer.allocUnsafeSlow(BatchedFile.BATCH)
      this.filled = 0
    }
    if (this.writes.size >= BatchedFile.IN_FLIGHT) await Promise.race(this.writes)
  }
}

async function main (op: S3ToolOp): Promise<object> {
  const c = client(op)
  try {
    switch (op.op) {
      case 'put': return await put(c, op)
      case 'upload': return await upload(c, op)
      case 'putbig': return await putBig(c, op)
      case 'list': return await list(c, op)
      case 'listhead': return await listHead(c, op)
      case 'get': return await get(c, op)
    }
  } finally {
    c.destroy()
  }
}

if (require.main === module) {
  main(JSON.parse(process.argv[2] ?? '{}') as S3ToolOp).then((r) => {
    const cpu = process.cpuUsage()
    process.stdout.write(JSON.stringify({ cpuSeconds: (cpu.user + cpu.system) / 1e6, ...r }) + '\n')
  }, (err: unknown) => {
    process.stderr.write(`s3tool failed: ${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  })
}
