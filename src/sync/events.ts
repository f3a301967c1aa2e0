/**
 * S3 and MinIO event notifications as object changes (spec/fsx-dra.md §27–28), pure parsing:
 *  - AWS S3: `{ Records: [{ eventName: 'ObjectCreated:Put', s3: { bucket: { name }, object: { key,
 *    eTag, sequencer } } }] }`, keys URL-encoded form style (`+` is a space);
 *  - MinIO: the same records with `s3:`-prefixed names, wrapped in `{ EventName, Key, Records }`;
 *  - `s3:TestEvent` (sent when a notification is configured): a test, nothing to apply;
 *  - SQS bodies: one of the above, or an SNS notification whose `Message` is one of them.
 * Records of other event types (ObjectAccessed, Restore…) are not changes and are dropped.
 */

export interface ObjectChange {
  bucket: string
  /** Decoded key. */
  key: string
  kind: 'created' | 'removed'
  /** S3's per-key order: a larger value (after right-padding with zeros) is a later event. */
  sequencer?: string
  etag?: string
  /** Epoch ms of the event (for the age of queued changes). */
  eventTime: number
}

/** `buckets`: every bucket the notification speaks for (what its sender must hold the secret of). */
export type ParsedEvents = { test: true, buckets: string[] } | { test: false, changes: ObjectChange[], ignored: number, buckets: string[] }

export class EventFormatError extends Error {}

export function parseEventBody (body: unknown): ParsedEvents {
  if (!isObject(body)) throw new EventFormatError('the body must be a JSON object')
  if (body.Event === 's3:TestEvent') return { test: true, buckets: typeof body.Bucket === 'string' ? [body.Bucket] : [] }
  if (body.Type === 'Notification' && typeof body.Message === 'string') {
    let inner: unknown
    try { inner = JSON.parse(body.Message) } catch { throw new EventFormatError('the SNS Message is not JSON') }
    return parseEventBody(inner)
  }
  if (!Array.isArray(body.Records)) throw new EventFormatError('no Records: not an S3 or MinIO event notification')
  const changes: ObjectChange[] = []
  const buckets = new Set<string>()
  let ignored = 0
  body.Records.forEach((record: unknown, i: number) => {
    const change = parseRecord(record, i)
    const bucket = (record as { s3?: { bucket?: { name?: unknown } } }).s3?.bucket?.name
    if (typeof bucket === 'string') buckets.add(bucket)
    if (change === undefined) ignored++
    else changes.push(change)
  })
  return { test: false, changes, ignored, buckets: [...buckets] }
}

function parseRecord (record: unknown, i: number): ObjectChange | undefined {
  const where = `Records[${i}]`
  if (!isObject(record)) throw new EventFormatError(`${where} is not an object`)
  const name = record.eventName
  if (typeof name !== 'string') throw new EventFormatError(`${where}.eventName is missing`)
  const type = name.replace(/^s3:/, '')
  const kind = type.startsWith('ObjectCreated:') ? 'created' : type.startsWith('ObjectRemoved:') ? 'removed' : undefined
  if (kind === undefined) return undefined
  const s3 = record.s3
  if (!isObject(s3) || !isObject(s3.bucket) || !isObject(s3.object)) throw new EventFormatError(`${where}.s3 lacks bucket or object`)
  const bucket = s3.bucket.name
  const rawKey = s3.object.key
  if (typeof bucket !== 'string' || bucket === '') throw new EventFormatError(`${where}.s3.bucket.name is missing`)
  if (typeof rawKey !== 'string' || rawKey === '') throw new EventFormatError(`${where}.s3.object.key is missing`)
  let key: string
  try {
    key = decodeURIComponent(rawKey.replace(/\+/g, ' '))
  } catch {
    throw new EventFormatError(`${where}.s3.object.key is not a valid URL-encoded key`)
  }
  const time = typeof record.eventTime === 'string' ? Date.parse(record.eventTime) : NaN
  return {
    bucket,
    key,
    kind,
    ...(typeof s3.object.sequencer === 'string' && /^[0-9A-Fa-f]+$/.test(s3.object.sequencer) ? { sequencer: s3.object.sequencer.toUpperCase() } : {}),
    ...(typeof s3.object.eTag === 'string' ? { etag: s3.object.eTag } : {}),
    eventTime: Number.isFinite(time) ? time : Date.now()
  }
}

/** S3's rule: right-pad the shorter sequencer with zeros, then compare as strings. */
export function compareSequencers (a: string, b: string): number {
  const n = Math.max(a.length, b.length)
  const pa = a.padEnd(n, '0')
  const pb = b.padEnd(n, '0')
  return pa < pb ? -1 : pa > pb ? 1 : 0
}

function isObject (v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
