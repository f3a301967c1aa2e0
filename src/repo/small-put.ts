/**
 * A PutObject of a small body in one signed request, past the SDK's middleware stack: the request
 * the SDK itself sends (the same endpoint from its own resolver, the same headers, signed by its
 * SigV4 signer, sent by the client's own HTTP handler over its connections), for about a third of
 * the CPU. The stack cost 1.4 ms of CPU per 4 KiB PUT, this 0.45 ms; small-file exports are
 * CPU-bound on a small host, and that was most of their cost.
 *
 * Only a success is answered here. Anything else (an error status, a redirect, a network error, an
 * endpoint signed other than with plain SigV4) gives `undefined`, and the caller sends the PUT
 * through the SDK, whose retries and errors the exporter knows. After a failure the bucket's PUTs
 * go straight to the SDK for ASIDE_MS: a server that is down, slow or refusing is not asked twice
 * per PUT (nor waited for twice).
 */
import { createHash } from 'node:crypto'
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { Crc32 } from '@smithy/core/checksum'
import { getEndpointFromInstructions } from '@smithy/core/endpoints'
import { extendedEncodeURIComponent, HttpRequest } from '@smithy/core/protocols'
import { SignatureV4 } from '@smithy/signature-v4'

/** Where a bucket's objects are written, and how requests there are signed. */
interface Route { url: URL, signer: SignatureV4, crc32: boolean, asideUntil: number }

const ASIDE_MS = 60_000

export interface SmallPut {
  client: S3Client
  bucket: string
  key: string
  body: Buffer
  metadata: Record<string, string>
  /** More headers to send and sign (server-side encryption). */
  headers: Record<string, string>
}

const routes = new WeakMap<S3Client, Map<string, Promise<Route | undefined>>>()

/** Resolved once per client and bucket (the resolver's rules are costly; their answer is not). */
function routeOf (client: S3Client, bucket: string): Promise<Route | undefined> {
  let byBucket = routes.get(client)
  if (byBucket === undefined) routes.set(client, byBucket = new Map())
  let route = byBucket.get(bucket)
  if (route === undefined) {
    route = resolveRoute(client, bucket)
    byBucket.set(bucket, route)
    route.catch(() => byBucket?.delete(bucket))
  }
  return route
}

async function resolveRoute (client: S3Client, bucket: string): Promise<Route | undefined> {
  const endpoint = await getEndpointFromInstructions({ Bucket: bucket, Key: 'k' }, PutObjectCommand, client.config)
  const schemes = endpoint.properties?.authSchemes as Array<{ name?: string, signingName?: string, signingRegion?: string }> | undefined
  const scheme = schemes?.[0]
  // SigV4a (multi-region access points) and S3 Express sessions are left to the SDK.
  if (scheme?.name !== 'sigv4' || scheme.signingRegion === undefined) return undefined
  const signer = new SignatureV4({
    service: scheme.signingName ?? 's3',
    region: scheme.signingRegion,
    sha256: client.config.sha256,
    credentials: client.config.credentials, // the client's own: refreshed as for its requests
    uriEscapePath: false, // S3 signs the path as sent, not encoded twice
    applyChecksum: false
  })
  const crc32 = await client.config.requestChecksumCalculation() === 'WHEN_SUPPORTED'
  return { url: new URL(endpoint.url.href), signer, crc32, asideUntil: 0 }
}

/** The object's ETag, or undefined when the SDK must try (see above). */
export async function putSmall (p: SmallPut, signal?: AbortSignal): Promise<string | undefined> {
  const route = await routeOf(p.client, p.bucket).catch(() => undefined)
  if (route === undefined || Date.now() < route.asideUntil) return undefined
  const etag = await send(route, p, signal).catch((err: unknown) => {
    if (signal?.aborted === true) throw err
    return undefined
  })
  if (etag === undefined) route.asideUntil = Date.now() + ASIDE_MS
  return etag
}

async function send (route: Route, p: SmallPut, signal?: AbortSignal): Promise<string | undefined> {
  const headers: Record<string, string> = {
    host: route.url.host,
    'content-type': 'application/octet-stream',
    'content-length': String(p.body.length),
    'x-amz-content-sha256': createHash('sha256').update(p.body).digest('hex'),
    ...p.headers
  }
  for (const [name, value] of Object.entries(p.metadata)) headers[`x-amz-meta-${name}`] = value
  if (route.crc32) {
    // What the SDK adds when checksums are WHEN_SUPPORTED (the default on AWS).
    const crc = new Crc32()
    crc.update(p.body)
    headers['x-amz-sdk-checksum-algorithm'] = 'CRC32'
    headers['x-amz-checksum-crc32'] = Buffer.from(await crc.digest()).toString('base64')
  }
  const base = route.url.pathname.replace(/\/$/, '')
  const request = new HttpRequest({
    method: 'PUT',
    protocol: route.url.protocol,
    hostname: route.url.hostname,
    port: route.url.port === '' ? undefined : Number(route.url.port),
    path: `${base}/${p.key.split('/').map(extendedEncodeURIComponent).join('/')}`,
    headers,
    body: p.body
  })
  const signed = await route.signer.sign(request)
  const { response } = await p.client.config.requestHandler.handle(signed as HttpRequest, { abortSignal: signal })
  // Read to the end, so that the connection serves the next request.
  for await (const _ of response.body as AsyncIterable<unknown>);
  const etag = response.headers.etag
  return response.statusCode === 200 && etag !== undefined ? etag : undefined
}
