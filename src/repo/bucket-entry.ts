/**
 * One entry of the bucket table, InfinStor style (spec/fsx-dra.md §25), and the pure rules that
 * turn an `add-mod-del-bucket` form into a new entry: no I/O here, so every rule is unit tested.
 *
 * Semantics (§25.2, inferred from InfinStor's four examples):
 *   add     create or replace the whole entry; a field that is absent or an empty string is unset
 *           (example 4 clears the role with `accessRole=`), unset settings take their defaults.
 *   modify  only the fields present change; an empty string unsets that field (example 2).
 *   delete  removes the entry; other known fields are ignored.
 * The merged entry is validated as a whole (a key id needs its secret, keys exclude a role…), so
 * a request is refused before anything is written. Errors name the form field and never quote a
 * secret or an endpoint (an endpoint URL may carry credentials).
 *
 * Settings s3link adds to InfinStor's fields are stored as given (undefined = "default"); their
 * defaults depend on `cloud` and are resolved when read (`resolveSettings`), so changing the cloud
 * of an entry also changes the defaults it did not override.
 */
import { randomUUID } from 'node:crypto'
import { z } from 'zod'
import { bucketNameProblem } from './bucket-name'

export const CLOUDS = ['aws', 'azure', 'minio', 'other'] as const
export const CHECKSUMS = ['WHEN_SUPPORTED', 'WHEN_REQUIRED'] as const
export const SSE_MODES = ['none', 'AES256', 'aws:kms'] as const
export const OPS = ['add', 'modify', 'delete'] as const

export type Cloud = typeof CLOUDS[number]
export type Checksums = typeof CHECKSUMS[number]
export type Sse = typeof SSE_MODES[number]

/** What is stored under `bucket:<name>` (src/store/keys.ts). Empty string = unset. */
export interface BucketEntry {
  bucketname: string
  cloud: Cloud
  endpoint: string
  accessKeyId: string
  secretAccessKey: string
  accessRole: string
  accessRoleExt: string
  sharedSecret: string
  region?: string
  pathStyle?: boolean
  checksums?: Checksums
  sse?: Sse
  kmsKeyId: string
  /** Changes with every write: S3 clients built for an older generation are rebuilt. */
  generation: string
  updated: string
}

/** Settings with the defaults of the entry's cloud applied. */
export interface BucketSettings {
  region: string
  pathStyle: boolean
  checksums: Checksums
  sse: Sse
}

/** The view returned by the API and printed by the CLI: every secret replaced by a has… flag. */
export interface BucketView extends BucketSettings {
  bucketname: string
  cloud: Cloud
  endpoint: string
  kmsKeyId: string
  accessKeyId: string
  accessRole: string
  accessRoleExt: string
  credentials: 'static' | 'role' | 'default'
  hasSecretAccessKey: boolean
  hasSharedSecret: boolean
}

/**
 * The form, as fastify receives it (all values strings). `.strict()`: an unknown field is a 400
 * naming it, not silently ignored (a typo such as `acessRole` must not drop a setting).
 */
export const BucketFormSchema = z.object({
  op: z.enum(OPS, { errorMap: () => ({ message: 'must be add, modify or delete' }) }),
  bucketname: z.string({ required_error: 'is required' }),
  cloud: z.string().optional(),
  endpoint: z.string().optional(),
  accessKeyId: z.string().optional(),
  secretAccessKey: z.string().optional(),
  accessRole: z.string().optional(),
  accessRoleExt: z.string().optional(),
  sharedSecret: z.string().optional(),
  region: z.string().optional(),
  pathStyle: z.string().optional(),
  checksums: z.string().optional(),
  sse: z.string().optional(),
  kmsKeyId: z.string().optional()
}).strict()

export type BucketForm = z.infer<typeof BucketFormSchema>

/** A request that cannot be applied; `field` names the form field at fault. */
export class BucketFieldError extends Error {
  readonly code = 'BAD_BUCKET_FIELD'
  constructor (readonly field: string, message: string) {
    super(`${field}: ${message}`)
  }
}

/** `arn:aws:iam::123456789012:role/path/Name` (also the aws-cn and aws-us-gov partitions). */
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/
/** A bare IAM role name; accepted because InfinStor's example 1 registers `accessRole=aaaa`. */
const ROLE_NAME = /^[\w+=,.@-]{1,64}$/
const REGION = /^[a-z0-9-]{1,32}$/

export function isRoleArn (value: string): boolean { return ROLE_ARN.test(value) }

/** The entry an `add` or `modify` form produces, validated; throws BucketFieldError. */
export function applyForm (existing: BucketEntry | undefined, form: BucketForm, now = new Date()): BucketEntry {
  const problem = bucketNameProblem(form.bucketname)
  if (problem !== undefined) throw new BucketFieldError('bucketname', `"${form.bucketname}" is not a valid S3 bucket name: ${problem}`)
  let base: BucketEntry
  if (form.op === 'add') {
    base = emptyEntry(form.bucketname)
  } else if (existing === undefined) {
    throw new BucketNotFoundError(form.bucketname)
  } else {
    base = { ...existing }
  }
  const next: BucketEntry = { ...base, generation: randomUUID(), updated: now.toISOString() }
  const set = <K extends keyof BucketForm>(field: K, apply: (value: string) => void): void => {
    const value = form[field]
    if (value !== undefined) apply(value)
  }
  set('cloud', (v) => { next.cloud = v === '' ? 'aws' : parseEnum('cloud', v, CLOUDS) })
  set('endpoint', (v) => { next.endpoint = v })
  set('accessKeyId', (v) => { next.accessKeyId = v })
  set('secretAccessKey', (v) => { next.secretAccessKey = v })
  set('accessRole', (v) => { next.accessRole = v })
  set('accessRoleExt', (v) => { next.accessRoleExt = v })
  set('sharedSecret', (v) => { next.sharedSecret = v })
  set('region', (v) => { next.region = v === '' ? undefined : v })
  set('pathStyle', (v) => { next.pathStyle = v === '' ? undefined : parseBoolean('pathStyle', v) })
  set('checksums', (v) => { next.checksums = v === '' ? undefined : parseEnum('checksums', v, CHECKSUMS) })
  set('sse', (v) => { next.sse = v === '' ? undefined : parseEnum('sse', v, SSE_MODES) })
  set('kmsKeyId', (v) => { next.kmsKeyId = v })
  validateEntry(next)
  return next
}

export class BucketNotFoundError extends Error {
  readonly code = 'BUCKET_NOT_FOUND'
  constructor (readonly bucketname: string) {
    super(`bucket ${bucketname} is not in the bucket table`)
  }
}

/** Rules on the merged entry: checked after every add and modify, before the write. */
export function validateEntry (e: BucketEntry): void {
  if (e.endpoint !== '') {
    let url: URL | undefined
    try { url = new URL(e.endpoint) } catch { url = undefined }
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new BucketFieldError('endpoint', 'must be an http:// or https:// URL (or empty for the cloud\'s default)')
    }
    if (url.username !== '' || url.password !== '') {
      throw new BucketFieldError('endpoint', 'must not contain credentials: use accessKeyId and secretAccessKey')
    }
  }
  if (e.accessKeyId !== '' && e.secretAccessKey === '') throw new BucketFieldError('secretAccessKey', 'is required with accessKeyId')
  if (e.secretAccessKey !== '' && e.accessKeyId === '') throw new BucketFieldError('accessKeyId', 'is required with secretAccessKey')
  if (e.accessRole !== '') {
    if (e.accessRole.startsWith('arn:') ? !ROLE_ARN.test(e.accessRole) : !ROLE_NAME.test(e.accessRole)) {
      throw new BucketFieldError('accessRole', 'must be an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>) or a role name')
    }
    if (e.accessKeyId !== '') throw new BucketFieldError('accessRole', 'cannot be set together with accessKeyId/secretAccessKey: choose keys or a role')
  }
  if (e.accessRoleExt.length > 1224) throw new BucketFieldError('accessRoleExt', 'must be at most 1224 characters')
  if (e.region !== undefined && !REGION.test(e.region)) throw new BucketFieldError('region', 'must look like us-east-1 (lower-case letters, digits, hyphens)')
  if (e.sse === 'aws:kms' && e.kmsKeyId === '') throw new BucketFieldError('kmsKeyId', 'is required with sse=aws:kms')
}

export function resolveSettings (e: BucketEntry): BucketSettings {
  const aws = e.cloud === 'aws'
  return {
    region: e.region ?? 'us-east-1',
    // MinIO and most other S3 servers have no wildcard DNS for virtual-hosted buckets.
    pathStyle: e.pathStyle ?? !aws,
    // Checksums beyond Content-MD5 are refused by s3rver and older MinIO: opt in only on AWS.
    checksums: e.checksums ?? (aws ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED'),
    sse: e.sse ?? 'none'
  }
}

export function credentialKind (e: BucketEntry): BucketView['credentials'] {
  if (e.accessKeyId !== '') return 'static'
  if (e.accessRole !== '') return 'role'
  return 'default'
}

export function bucketView (e: BucketEntry): BucketView {
  return {
    bucketname: e.bucketname,
    cloud: e.cloud,
    endpoint: e.endpoint,
    ...resolveSettings(e),
    kmsKeyId: e.kmsKeyId,
    accessKeyId: e.accessKeyId,
    accessRole: e.accessRole,
    accessRoleExt: e.accessRoleExt,
    credentials: credentialKind(e),
    hasSecretAccessKey: e.secretAccessKey !== '',
    hasSharedSecret: e.sharedSecret !== ''
  }
}

function emptyEntry (bucketname: string): BucketEntry {
  return {
    bucketname,
    cloud: 'aws', // InfinStor's example 1 omits cloud on add
    endpoint: '',
    accessKeyId: '',
    secretAccessKey: '',
    accessRole: '',
    accessRoleExt: '',
    sharedSecret: '',
    kmsKeyId: '',
    generation: '',
    updated: ''
  }
}

function parseEnum<T extends string> (field: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T
  throw new BucketFieldError(field, `must be one of ${allowed.join(', ')}`)
}

function parseBoolean (field: string, value: string): boolean {
  if (value === 'true') return true
  if (value === 'false') return false
  throw new BucketFieldError(field, 'must be true or false')
}
