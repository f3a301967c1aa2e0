/**
 * `bucket test`: a real HeadBucket and a ListObjectsV2 (MaxKeys 1) through the bucket's own client,
 * reporting whether the endpoint answered, whether the credentials may list the bucket, and the
 * HeadBucket round trip. Errors are described from the S3 error code and HTTP status only: SDK
 * messages can quote request details, and this text is shown to users and logged.
 */
import { HeadBucketCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import type { S3Clients } from './s3-clients'

const PROBE_TIMEOUT_MS = 15_000

export interface ProbeResult {
  bucketname: string
  /** The endpoint answered with an HTTP response. */
  reachable: boolean
  /** HeadBucket and ListObjectsV2 both succeeded with these credentials. */
  authorized: boolean
  /** false when the server said the bucket does not exist. */
  exists?: boolean
  latencyMs: number
  credentials: 'static' | 'role' | 'default'
  error?: string
  /** The failure may pass on its own (5xx, throttling, timeout, connection error), unlike a refusal. */
  transient?: boolean
}

export async function probeBucket (clients: S3Clients, bucketname: string): Promise<ProbeResult> {
  const { client, entry } = await clients.forBucket(bucketname)
  const credentials = entry === undefined ? 'default' : entry.accessKeyId !== '' ? 'static' : entry.accessRole !== '' ? 'role' : 'default'
  const started = performance.now()
  const latency = (): number => Math.round((performance.now() - started) * 10) / 10
  let latencyMs = 0
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucketname }), { abortSignal: AbortSignal.timeout(PROBE_TIMEOUT_MS) })
    latencyMs = latency()
    await client.send(new ListObjectsV2Command({ Bucket: bucketname, MaxKeys: 1 }), { abortSignal: AbortSignal.timeout(PROBE_TIMEOUT_MS) })
    return { bucketname, reachable: true, authorized: true, exists: true, latencyMs, credentials }
  } catch (err) {
    latencyMs = latencyMs === 0 ? latency() : latencyMs
    // HEAD replies have no body, hence no S3 error code: ask ListObjectsV2, whose reply carries one.
    const cause = latencyMs > 0 && httpStatus(err) !== undefined ? await listError(clients, bucketname) ?? err : err
    return { bucketname, credentials, latencyMs, ...describe(cause, bucketname) }
  }
}

function httpStatus (err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode
}

async function listError (clients: S3Clients, bucketname: string): Promise<unknown> {
  const { client } = await clients.forBucket(bucketname)
  try {
    await client.send(new ListObjectsV2Command({ Bucket: bucketname, MaxKeys: 1 }), { abortSignal: AbortSignal.timeout(PROBE_TIMEOUT_MS) })
    return undefined
  } catch (err) {
    return httpStatus(err) !== undefined ? err : undefined
  }
}

function describe (err: unknown, bucketname: string): Pick<ProbeResult, 'reachable' | 'authorized' | 'exists' | 'error' | 'transient'> {
  const e = err as { name?: string, code?: string, $metadata?: { httpStatusCode?: number }, message?: string }
  const status = e.$metadata?.httpStatusCode
  if (status === undefined) {
    if (e.name === 'CredentialsProviderError' || /credential|role/i.test(e.message ?? '')) {
      return { reachable: false, authorized: false, error: `no usable credentials: ${oneLine(e.message)}` }
    }
    if (e.name === 'AbortError' || e.name === 'TimeoutError') return { reachable: false, authorized: false, transient: true, error: `no answer within ${PROBE_TIMEOUT_MS / 1000} s` }
    return { reachable: false, authorized: false, transient: true, error: `cannot reach the endpoint (${e.code ?? e.name ?? 'network error'})` }
  }
  const code = e.name ?? 'Error'
  if (status === 404 || code === 'NoSuchBucket' || code === 'NotFound') {
    return { reachable: true, authorized: false, exists: false, error: `bucket ${bucketname} does not exist at this endpoint (${status} ${code === 'NotFound' ? 'NoSuchBucket' : code})` }
  }
  if (status === 403) return { reachable: true, authorized: false, error: `access denied: the credentials may not list ${bucketname} (${status} ${code})` }
  if (status === 301 || status === 400 && code === 'AuthorizationHeaderMalformed') {
    return { reachable: true, authorized: false, error: `the bucket is in another region than configured (${status} ${code})` }
  }
  return { reachable: true, authorized: false, transient: status >= 500 || status === 429, error: `the server answered ${status} ${code}` }
}

/** First line only, bounded: provider errors can be long. */
function oneLine (message = ''): string {
  return message.split('\n')[0].slice(0, 300)
}
