/**
 * One S3 client per bucket, built from its table entry (endpoint, region, path style, checksum
 * mode, credentials) and reused: the client keeps its connections and its memoized credentials.
 * The entry is kept with its client: every export and load asks for its bucket's client, and a
 * database read each time was a tenth of the daemon's busy time while exports ran. The table is
 * the only writer of entries while the daemon holds the database, and it tells us (onChange):
 * the client is dropped then and rebuilt from the new entry at the next request.
 * A bucket not in the table gets a client with the default configuration and credential chain.
 */
import { S3Client } from '@aws-sdk/client-s3'
import type { BucketEntry } from './bucket-entry'
import { resolveSettings } from './bucket-entry'
import type { BucketTable } from './bucket-table'
import { type CredentialOptions, credentialsFor } from './credentials'

/** Fail fast when an endpoint does not answer, instead of the OS's minutes-long connect timeout. */
export const CONNECTION_TIMEOUT_MS = 5000

interface Cached { client: S3Client, entry?: BucketEntry }

export class S3Clients {
  private readonly cache = new Map<string, Cached>()
  /** Drops per bucket, to notice a change made while an entry was being read. */
  private readonly changes = new Map<string, number>()

  constructor (private readonly table: BucketTable, private readonly opts: ClientOptions) {
    table.onChange((change) => this.drop(change.op === 'delete' ? change.bucketname : change.entry.bucketname))
  }

  /** The client for a bucket, and its entry (undefined: not in the table, default chain). */
  async forBucket (bucketname: string): Promise<{ client: S3Client, entry?: BucketEntry }> {
    const cached = this.cache.get(bucketname)
    if (cached !== undefined) return cached
    const seen = this.changes.get(bucketname) ?? 0
    const entry = await this.table.get(bucketname)
    // The entry changed while we read it (the read may predate the change): read it again.
    if ((this.changes.get(bucketname) ?? 0) !== seen) return await this.forBucket(bucketname)
    const built = this.cache.get(bucketname) ?? { client: buildClient(entry, this.opts), entry }
    this.cache.set(bucketname, built)
    return built
  }

  drop (bucketname: string): void {
    this.changes.set(bucketname, (this.changes.get(bucketname) ?? 0) + 1)
    this.cache.get(bucketname)?.client.destroy()
    this.cache.delete(bucketname)
  }

  close (): void {
    for (const name of [...this.cache.keys()]) this.drop(name)
  }
}

export interface ClientOptions extends CredentialOptions {
  /** A request whose connection is silent this long fails (socketTimeout); none if absent. */
  idleTimeoutMs?: number
}

function buildClient (entry: BucketEntry | undefined, opts: ClientOptions): S3Client {
  const requestHandler = { connectionTimeout: CONNECTION_TIMEOUT_MS, socketTimeout: opts.idleTimeoutMs }
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
