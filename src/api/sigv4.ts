/**
 * Verifies AWS Signature Version 4 (`Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
 * Signature=…`) by signing the received request again with the SDK's own signer
 * (@smithy/signature-v4, the implementation every AWS SDK for JavaScript uses) and comparing the
 * two signatures in constant time. Canonicalisation is therefore the SDK's, not ours.
 *
 * What we rebuild: the method, the path as sent, the query, exactly the headers the client listed
 * in SignedHeaders, and the raw body. The signer is told to sign just those headers and not to add
 * x-amz-content-sha256 (applyChecksum false); if the client sent that header, it must be the
 * SHA-256 of the body we received (the signer trusts it, so we check it). Presigned URLs (signature
 * in the query string) are not accepted: the API has no use for them.
 *
 * The date must be within 15 minutes of ours, as AWS requires, so a captured request cannot be
 * replayed later.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { SignatureV4 } from '@smithy/signature-v4'
import { Sha256 } from '@aws-crypto/sha256-js'
import { awsError } from './errors'

export const MAX_SKEW_MS = 15 * 60 * 1000

export interface SigV4Header {
  accessKeyId: string
  date: string
  region: string
  service: string
  signedHeaders: string[]
  signature: string
}

export function isSigV4 (authorization: string | undefined): boolean {
  return authorization?.startsWith('AWS4-HMAC-SHA256 ') === true
}

/** Parses the Authorization header; throws a 403 IncompleteSignatureException if malformed. */
export function parseSigV4 (authorization: string): SigV4Header {
  const fields = new Map<string, string>()
  for (const part of authorization.slice('AWS4-HMAC-SHA256 '.length).split(',')) {
    const eq = part.indexOf('=')
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim())
  }
  const scope = (fields.get('Credential') ?? '').split('/')
  const signedHeaders = (fields.get('SignedHeaders') ?? '').split(';').filter((h) => h !== '')
  const signature = fields.get('Signature') ?? ''
  if (scope.length !== 5 || scope[4] !== 'aws4_request' || !/^\d{8}$/.test(scope[1]) || signedHeaders.length === 0 ||
      !/^[0-9a-f]{64}$/.test(signature) || !signedHeaders.includes('host')) {
    throw awsError(403, 'IncompleteSignatureException', 'the Authorization header is not a complete AWS Signature V4 (Credential, SignedHeaders with host, Signature)')
  }
  return { accessKeyId: scope[0], date: scope[1], region: scope[2], service: scope[3], signedHeaders, signature }
}

/** X-Amz-Date (yyyymmddThhmmssZ) as a Date, or undefined if absent or malformed. */
export function parseAmzDate (value: string | undefined): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value ?? '')
  if (m === null) return undefined
  const [, y, mo, d, h, mi, s] = m
  return new Date(Date.UTC(+y, +mo - 1, +d, +h, +mi, +s))
}

/** The checks that need no body: header shape, date, skew, scope date. Throws a 403. */
export function checkSigV4Envelope (header: SigV4Header, amzDate: string | undefined, now = Date.now()): Date {
  const date = parseAmzDate(amzDate)
  if (date === undefined) throw awsError(403, 'IncompleteSignatureException', 'a signed request needs an X-Amz-Date header (yyyymmddThhmmssZ)')
  if (Math.abs(now - date.getTime()) > MAX_SKEW_MS) {
    throw awsError(403, 'RequestExpired', 'the request is signed more than 15 minutes away from the server\'s time (X-Amz-Date)')
  }
  if (amzDate?.slice(0, 8) !== header.date) throw awsError(403, 'SignatureDoesNotMatch', 'the credential scope date does not match X-Amz-Date')
  return date
}

export interface ReceivedRequest {
  method: string
  /** The request target as sent: path and query string, still percent-encoded. */
  url: string
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

/** Recomputes the signature with the given secret; throws a 403 SignatureDoesNotMatch if it differs. */
export async function verifySigV4 (req: ReceivedRequest, header: SigV4Header, signingDate: Date, secretAccessKey: string): Promise<void> {
  const q = req.url.indexOf('?')
  const path = q < 0 ? req.url : req.url.slice(0, q)
  const query: Record<string, string | string[]> = {}
  for (const [k, v] of new URLSearchParams(q < 0 ? '' : req.url.slice(q + 1))) {
    const prev = query[k]
    query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v]
  }
  const headers: Record<string, string> = {}
  for (const name of header.signedHeaders) {
    const value = req.headers[name]
    if (value === undefined) throw awsError(403, 'SignatureDoesNotMatch', `signed header ${name} is missing from the request`)
    headers[name] = Array.isArray(value) ? value.join(',') : value
  }
  const declared = headers['x-amz-content-sha256']
  if (declared !== undefined && declared !== createHash('sha256').update(req.body).digest('hex')) {
    throw awsError(403, 'SignatureDoesNotMatch', 'x-amz-content-sha256 is not the SHA-256 of the body')
  }
  const signer = new SignatureV4({
    credentials: { accessKeyId: header.accessKeyId, secretAccessKey },
    region: header.region,
    service: header.service,
    sha256: Sha256,
    uriEscapePath: header.service !== 's3', // S3 alone signs the path without double-encoding
    applyChecksum: false
  })
  const host = headers.host
  const signed = await signer.sign({
    method: req.method,
    protocol: 'http:',
    hostname: host.replace(/:\d+$/, ''),
    path,
    query,
    headers,
    body: req.body.length > 0 ? new Uint8Array(req.body) : undefined
  }, { signingDate, signableHeaders: new Set(header.signedHeaders) })
  const expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization))?.[1] ?? ''
  if (!constantTimeEqual(expected, header.signature)) {
    throw awsError(403, 'SignatureDoesNotMatch', 'the request signature does not match: check the secret access key and the signing method')
  }
}

/** Equal-length comparison in constant time; different lengths compare as unequal (after hashing, so no early exit). */
export function constantTimeEqual (a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest()
  const hb = createHash('sha256').update(b).digest()
  return timingSafeEqual(ha, hb) && a.length === b.length
}
