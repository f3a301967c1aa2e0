/**
 * The daemon's Prometheus metrics (prom-client), served at GET /metrics. One registry per daemon;
 * modules take the instruments they update from here, so every metric is named in one place.
 */
import { Counter, Gauge, Registry } from 'prom-client'

export class Metrics {
  readonly registry = new Registry()

  /** Change notifications and listing differences seen by automatic import, by outcome. */
  readonly importEvents = new Counter({
    name: 's3link_import_events_total',
    help: 'S3 change events received by automatic import, by source (webhook, sqs) and result (received, applied, ignored, failed)',
    labelNames: ['source', 'result'] as const,
    registers: [this.registry]
  })

  /** Entries created or updated from S3 objects (automatic import and import tasks). */
  readonly objectsImported = new Counter({
    name: 's3link_objects_imported_total',
    help: 'S3 objects imported into the namespace (created or updated entries)',
    labelNames: ['via'] as const,
    registers: [this.registry]
  })

  readonly objectsExported = new Counter({
    name: 's3link_objects_exported_total',
    help: 'Objects written to (op=exported) or deleted from (op=deleted) S3 by export',
    labelNames: ['op'] as const,
    registers: [this.registry]
  })

  readonly bytesExported = new Counter({
    name: 's3link_bytes_exported_total',
    help: 'Bytes of file content uploaded by export',
    registers: [this.registry]
  })

  readonly exportFailures = new Counter({
    name: 's3link_export_failures_total',
    help: 'Exports that failed or were skipped, by FSx event code',
    labelNames: ['code'] as const,
    registers: [this.registry]
  })

  /** Content released: by the bounded cache (`by=cache`), or on request (hsm release, release tasks). */
  readonly cacheReleasedBytes = new Counter({
    name: 's3link_cache_released_bytes_total',
    help: 'Bytes of local file content released (content kept in S3 only), by who released it (cache, request)',
    labelNames: ['by'] as const,
    registers: [this.registry]
  })

  /** Opens the kernel serves from local content itself (src/fs/passthrough.ts): their reads never reach the daemon. */
  readonly passthroughOpens = new Counter({
    name: 's3link_passthrough_opens_total',
    help: 'File opens whose reads and writes the kernel serves from the local content file itself (FUSE passthrough)',
    registers: [this.registry]
  })

  readonly cacheEvictions = new Counter({
    name: 's3link_cache_evictions_total',
    help: 'Files whose local content the bounded cache released to stay under its capacity',
    registers: [this.registry]
  })

  private cacheUse: () => { bytes: number, capacity?: number } = () => ({ bytes: 0 })

  /** Where the cache gauges read from (src/content/cache.ts). */
  useCache (use: () => { bytes: number, capacity?: number }): void {
    this.cacheUse = use
  }

  /** All export failures so far (every code). */
  async exportFailureCount (): Promise<number> {
    return (await this.exportFailures.get()).values.reduce((sum, v) => sum + v.value, 0)
  }

  /** FSx's AgeOfOldestQueuedMessage for automatic import. */
  readonly oldestImportChange: Gauge
  /** FSx's AgeOfOldestQueuedMessage for automatic export. */
  readonly oldestExportChange: Gauge
  readonly exportQueueDepth: Gauge
  readonly cacheBytes: Gauge
  readonly cacheCapacity: Gauge

  constructor (oldestImportChangeAge: () => number, exportQueue: () => { depth: number, oldestAgeSeconds: number } = () => ({ depth: 0, oldestAgeSeconds: 0 })) {
    this.oldestExportChange = new Gauge({
      name: 's3link_export_oldest_queued_change_age_seconds',
      help: 'Age of the oldest change waiting to be exported (FSx AgeOfOldestQueuedMessage, Publisher=AutoExport); 0 when none is queued',
      registers: [this.registry],
      collect () { this.set(exportQueue().oldestAgeSeconds) }
    })
    this.exportQueueDepth = new Gauge({
      name: 's3link_export_queue_depth',
      help: 'Paths waiting to be exported',
      registers: [this.registry],
      collect () { this.set(exportQueue().depth) }
    })
    const cacheUse = (): { bytes: number, capacity?: number } => this.cacheUse()
    this.cacheBytes = new Gauge({
      name: 's3link_cache_bytes',
      help: 'Bytes of file content held locally (including room reserved by writes and loads in flight)',
      registers: [this.registry],
      collect () { this.set(cacheUse().bytes) }
    })
    this.cacheCapacity = new Gauge({
      name: 's3link_cache_capacity_bytes',
      help: 'Configured capacity of the local cache (cacheCapacity); 0 when unbounded',
      registers: [this.registry],
      collect () { this.set(cacheUse().capacity ?? 0) }
    })
    this.oldestImportChange = new Gauge({
      name: 's3link_import_oldest_queued_change_age_seconds',
      help: 'Age of the oldest S3 change waiting to be imported (FSx AgeOfOldestQueuedMessage, Publisher=AutoImport); 0 when none is queued',
      registers: [this.registry],
      collect () { this.set(oldestImportChangeAge()) }
    })
  }
}
