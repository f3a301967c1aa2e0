/**
 * One S3 client per bucket, built from its table entry (endpoint, region, path style, checksum
 * mode, credentials) and reused: the client keeps its connections and its memoized credentials.
 * A client is rebuilt when the entry changes: the table tells us (onChange) and, as a second
 * guard, every client remembers the `generation` of the entry it was built from.
 * A bucket not in the table gets a client with the default configuration and credential chain.
 */
import { S3Client } from '@aws-sdk/client-s3'
import type { BucketEntry } from './bucket-entry'
import { resolveSettings } from './bucket-entry'
import type { BucketTable } from './bucket-table'
import { type CredentialOptions, credentialsFor } from './credentials'

/** Fail fast when an endpoint does not answer, instead of the OS's minutes-long connect timeout. */
const CONNECTION_TIMEOUT_MS = 5000

interface Cached { generation: string, client: S3Client }

export class S3Clients {
  private readonly cache = new Map<string, Cached>()

  constructor (private readonly table: BucketTable, private readonly opts: CredentialOptions) {
    table.onChange((change) => this.drop(change.op === 'delete' ? change.bucketname : change.entry.bucketname))
  }

  /** The client for a bucket, and its entry (undefined: not in the table, default chain). */
  async forBucket (bucketname: string): Promise<{ client: S3Client, entry?: BucketEntry }> {
    const entry = await this.table.get(bucketname)
    const generation = entry?.generation ?? ''
    const cached = this.cache.get(bucketname)
    if (cached !== undefined && cached.generation === generation) return { client: cached.client, entry }
    if (cached !== undefined) this.drop(bucketname)
    const client = buildClient(entry, this.opts)
    this.cache.set(bucketname, { generation, client })
    return { client, entry }
  }

  drop (bucketname: string): void {
    this.cache.get(bucketname)?.client.destroy()
    this.cache.delete(bucketname)
  }

  close (): void {
    for (const name of [...this.cache.keys()]) this.drop(name)
  }
}

function buildClient (entry: BucketEntry | undefined, opts: CredentialOptions): S3Client {
  const requestHandler = { connectionTimeout: CONNECTION_TIMEOUT_MS }
  if (entry === undefined) return new S3Client({ credentials: credentialsFor(undefined, opts), requestHandler })
  const s = resolveSettings(entry)
  return new S3Client({
    region: s.region,
    ...(entry.endpoint !== '' ? { endpoint: entry.endpoint } : {}),
    forcePathStyle: s.pathStyle,
    requestChecksumCalculation: s.checksums,
    responseChecksumValidation: s.checksums,
    credentials: credentialsFor(entry, opts),
    requestHandler
  })
}
