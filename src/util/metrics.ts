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

  /** FSx's AgeOfOldestQueuedMessage for automatic import. */
  readonly oldestImportChange: Gauge

  constructor (oldestImportChangeAge: () => number) {
    this.oldestImportChange = new Gauge({
      name: 's3link_import_oldest_queued_change_age_seconds',
      help: 'Age of the oldest S3 change waiting to be imported (FSx AgeOfOldestQueuedMessage, Publisher=AutoImport); 0 when none is queued',
      registers: [this.registry],
      collect () { this.set(oldestImportChangeAge()) }
    })
  }
}
