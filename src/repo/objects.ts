/**
 * The S3 calls import and lazy loading make, on a bucket's client (s3-clients.ts): listings
 * streamed page by page (memory bounded at any object count), HEAD for an object's user metadata,
 * and GETs of a whole object or a byte range, pinned to the ETag the entry was imported with (a
 * changed object fails with PreconditionFailed instead of mixing two versions into one file).
 * Errors keep the SDK's; `s3ErrorCode` turns one into FSx's report code.
 */
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3'

export interface ListedObject { key: string, size: number, etag: string, modified: number }

export interface ObjectHead extends ListedObject {
  /** User metadata, keys lower-case without the x-amz-meta- prefix. */
  meta: Record<string, string>
  storageClass?: string
}

const PAGE_SIZE = 1000

export async function * listObjectPages (client: S3Client, bucket: string, prefix: string, signal?: AbortSignal): AsyncGenerator<ListedObject[]> {
  let token: string | undefined
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token, MaxKeys: PAGE_SIZE }), { abortSignal: signal })
    yield (page.Contents ?? []).map((o) => ({
      key: o.Key ?? '',
      size: o.Size ?? 0,
      etag: o.ETag ?? '',
      modified: o.LastModified?.getTime() ?? 0
    }))
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined
  } while (token !== undefined)
}

/** One "directory" of a listing with Delimiter '/': its objects and its sub-prefixes, all pages. */
export async function listDirectory (client: S3Client, bucket: string, prefix: string, signal?: AbortSignal): Promise<{ objects: ListedObject[], prefixes: string[] }> {
  const objects: ListedObject[] = []
  const prefixes: string[] = []
  let token: string | undefined
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token, MaxKeys: PAGE_SIZE }), { abortSignal: signal })
    for (const o of page.Contents ?? []) objects.push({ key: o.Key ?? '', size: o.Size ?? 0, etag: o.ETag ?? '', modified: o.LastModified?.getTime() ?? 0 })
    for (const p of page.CommonPrefixes ?? []) if (p.Prefix !== undefined) prefixes.push(p.Prefix)
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined
  } while (token !== undefined)
  return { objects, prefixes }
}

export async function headObject (client: S3Client, bucket: string, key: string, signal?: AbortSignal): Promise<ObjectHead> {
  const h = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal })
  const meta: Record<string, string> = {}
  for (const [k, v] of Object.entries(h.Metadata ?? {})) meta[k.toLowerCase()] = v
  return {
    key,
    size: h.ContentLength ?? 0,
    etag: h.ETag ?? '',
    modified: h.LastModified?.getTime() ?? 0,
    meta,
    ...(h.StorageClass !== undefined ? { storageClass: h.StorageClass } : {})
  }
}

/** The object's bytes [start, end] (inclusive; end undefined = to the end), as a stream of chunks. */
export async function getObjectRange (client: S3Client, bucket: string, key: string, etag: string, start: number, end: number | undefined, signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
  const out = await client.send(new GetObjectCommand({
    Bucket: bucket, Key: key, IfMatch: etag, Range: `bytes=${start}-${end ?? ''}`
  }), { abortSignal: signal })
  // Servers that ignore If-Match (s3rver does) still say which version they sent.
  if (etag !== '' && out.ETag !== undefined && out.ETag !== etag) {
    (out.Body as { destroy?: () => void } | undefined)?.destroy?.()
    throw Object.assign(new Error(`the object changed since it was imported (ETag ${out.ETag}, expected ${etag})`), { name: 'PreconditionFailed' })
  }
  if (out.Body === undefined) return (async function * () {})()
  return out.Body as AsyncIterable<Uint8Array>
}

export async function getObjectText (client: S3Client, bucket: string, key: string, signal?: AbortSignal): Promise<string> {
  const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal })
  return await out.Body?.transformToString('utf8') ?? ''
}

/** FSx's completion-report code for an S3 error. */
export function s3ErrorCode (err: unknown): string {
  const e = err as { name?: string, $metadata?: { httpStatusCode?: number } }
  const status = e.$metadata?.httpStatusCode
  // Also a 404, but no object is lost: the association is misconfigured (a HEAD's 404 has no body
  // to say which; only requests with one tell the two apart).
  if (e.name === 'NoSuchBucket') return 'S3BucketNotFound'
  if (status === 404 || e.name === 'NoSuchKey' || e.name === 'NotFound') return 'S3ObjectNotFound'
  if (status === 403 || e.name === 'AccessDenied') return 'S3AccessDenied'
  return 'S3Error'
}

/** A short description of an S3 error for logs and reports: code and status, never request details. */
export function describeS3Error (err: unknown): string {
  const e = err as { name?: string, code?: string, message?: string, $metadata?: { httpStatusCode?: number } }
  const status = e.$metadata?.httpStatusCode
  if (status !== undefined) return `${e.name ?? 'Error'} (HTTP ${status})`
  if (e.code !== undefined) return `${e.name ?? 'Error'} (${e.code})`
  return (e.message ?? e.name ?? 'unknown error').split('\n')[0].slice(0, 200)
}
