/**
 * The S3 writes export makes: objects with FSx POSIX metadata (posix-metadata.ts), from a local
 * content file (multipart through @aws-sdk/lib-storage above one part; a small one in one request
 * signed past the SDK's middleware: small-put.ts), from a string (symlink
 * targets, directory markers), by server-side copy with replaced metadata (chmod/chown, renames of
 * released files), and deletions. Encryption is the target's (transfers.ts derives it from the
 * bucket table's `sse` setting; none leaves it to the bucket's default encryption).
 *
 * These run in the transfer worker (transfer-worker.ts), which loads this module: it imports
 * nothing but the SDK, so that the worker starts without the rest of the daemon.
 */
import fs from 'node:fs'
import { CopyObjectCommand, DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { putSmall } from './small-put'

const MIN_PART = 8 << 20
const SYNC_READ_MAX = 256 << 10
/** Bodies up to this size are sent by putSmall: its saving is per request, not per byte. */
const SMALL_PUT_MAX = 1 << 20
const MAX_PARTS = 10_000
/** Largest object S3 accepts. */
export const MAX_OBJECT_SIZE = 5 * 2 ** 40

export interface Encryption { ServerSideEncryption?: 'AES256' | 'aws:kms', SSEKMSKeyId?: string }
export interface Target { client: S3Client, bucket: string, encryption?: Encryption }
export interface Written { etag: string }

/** Parts grow with the file so that even a 5 TiB file needs fewer than 10,000 of them. */
export function partSizeFor (size: number): number {
  return Math.max(MIN_PART, Math.ceil(size / (MAX_PARTS - 1) / (1 << 20)) * (1 << 20))
}

/** Uploads `size` bytes of a local file; multipart (parallel parts) above one part. */
export async function putFile (t: Target, key: string, file: string, size: number, metadata: Record<string, string>, signal?: AbortSignal): Promise<Written> {
  const partSize = partSizeFor(size)
  if (size <= partSize) {
    // The file may have been truncated since `size` was read (a writer opened it with O_TRUNC):
    // what it holds is sent, as the multipart path does. Announcing `size` bytes and sending fewer
    // left the request waiting for the rest for ever. The changed file stays dirty and is exported
    // again (exporter.ts markExported).
    const body = size === 0 ? Buffer.alloc(0) : (await readSmall(file, size)).subarray(0, size)
    return await putBuffer(t, key, body, metadata, signal)
  }
  const upload = new Upload({
    client: t.client,
    params: { Bucket: t.bucket, Key: key, Metadata: metadata, ...t.encryption, Body: fs.createReadStream(file, { start: 0, end: size - 1, highWaterMark: 1 << 20 }) },
    partSize,
    queueSize: 4,
    leavePartsOnError: false
  })
  signal?.addEventListener('abort', () => { void upload.abort() }, { once: true })
  const out = await upload.done()
  return { etag: (out as { ETag?: string }).ETag ?? '' }
}

/**
 * A file of up to SYNC_READ_MAX bytes is read in one blocking call: this runs on the transfer
 * worker's own thread (never the FUSE handlers'), and readFile's four trips through the thread pool
 * (open, fstat, read, close) cost more than the read, most of a small export's time on its thread.
 */
async function readSmall (file: string, size: number): Promise<Buffer> {
  return size <= SYNC_READ_MAX ? fs.readFileSync(file) : await fs.promises.readFile(file)
}

export async function putText (t: Target, key: string, body: string, metadata: Record<string, string>, signal?: AbortSignal): Promise<Written> {
  return await putBuffer(t, key, Buffer.from(body), metadata, signal)
}

/** One PutObject: small bodies past the SDK's stack first (small-put.ts), the SDK when that fails. */
async function putBuffer (t: Target, key: string, body: Buffer, metadata: Record<string, string>, signal?: AbortSignal): Promise<Written> {
  if (body.length <= SMALL_PUT_MAX) {
    const etag = await putSmall({ client: t.client, bucket: t.bucket, key, body, metadata, headers: encryptionHeaders(t.encryption) }, signal)
    if (etag !== undefined) return { etag }
  }
  const out = await t.client.send(new PutObjectCommand({ Bucket: t.bucket, Key: key, Body: body, ContentLength: body.length, Metadata: metadata, ...t.encryption }), { abortSignal: signal })
  return { etag: out.ETag ?? '' }
}

function encryptionHeaders (e: Encryption = {}): Record<string, string> {
  const headers: Record<string, string> = {}
  if (e.ServerSideEncryption !== undefined) headers['x-amz-server-side-encryption'] = e.ServerSideEncryption
  if (e.SSEKMSKeyId !== undefined) headers['x-amz-server-side-encryption-aws-kms-key-id'] = e.SSEKMSKeyId
  return headers
}

/** Server-side copy (same bucket) with the given metadata instead of the source's. */
export async function copyWithMetadata (t: Target, from: string, to: string, metadata: Record<string, string>, signal?: AbortSignal): Promise<Written> {
  const out = await t.client.send(new CopyObjectCommand({
    Bucket: t.bucket, Key: to, CopySource: `${t.bucket}/${encodeURIComponent(from).replace(/%2F/g, '/')}`,
    MetadataDirective: 'REPLACE', Metadata: metadata, ...t.encryption
  }), { abortSignal: signal })
  return { etag: out.CopyObjectResult?.ETag ?? '' }
}

/**
 * Deletes keys one request each (DeleteObjects needs a checksum header that S3-compatible servers
 * such as s3rver reject); a key that does not exist is fine, as in S3.
 */
export async function deleteKeys (t: Target, keys: string[], signal?: AbortSignal): Promise<void> {
  await Promise.all(keys.map(async (Key) => await t.client.send(new DeleteObjectCommand({ Bucket: t.bucket, Key }), { abortSignal: signal })))
}
