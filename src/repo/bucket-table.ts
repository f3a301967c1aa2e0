/**
 * The bucket table in LevelDB (`bucket:<name>`, src/store/keys.ts). Every change is a
 * read-merge-validate-write under one mutex, so two concurrent `modify`s of one bucket cannot lose
 * each other's fields, and a rejected request writes nothing. Listeners hear about each change
 * (the S3 client cache drops the bucket's client).
 */
import type { Store } from '../store/db'
import { bucketKey, bucketRange } from '../store/keys'
import { Mutex } from '../util/mutex'
import { type BucketEntry, type BucketForm, BucketFieldError, BucketNotFoundError, applyForm } from './bucket-entry'
import { bucketNameProblem } from './bucket-name'

export type BucketChange = { op: 'add' | 'modify', entry: BucketEntry } | { op: 'delete', bucketname: string }

export class BucketTable {
  private readonly mutex = new Mutex()
  private readonly listeners: Array<(change: BucketChange) => void> = []

  constructor (private readonly store: Store) {}

  onChange (listener: (change: BucketChange) => void): void {
    this.listeners.push(listener)
  }

  async get (bucketname: string): Promise<BucketEntry | undefined> {
    if (bucketNameProblem(bucketname) !== undefined) return undefined
    return await this.store.get<BucketEntry>(bucketKey(bucketname))
  }

  /** Every entry in name order (the table is small: one entry per registered bucket). */
  async list (): Promise<BucketEntry[]> {
    const out: BucketEntry[] = []
    for await (const [, entry] of this.store.entries<BucketEntry>(bucketRange)) out.push(entry)
    return out
  }

  /** Applies an add-mod-del-bucket form. Throws BucketFieldError (400) or BucketNotFoundError (404). */
  async apply (form: BucketForm): Promise<BucketChange> {
    return await this.mutex.run(async () => {
      const problem = bucketNameProblem(form.bucketname)
      if (problem !== undefined) throw new BucketFieldError('bucketname', `"${form.bucketname}" is not a valid S3 bucket name: ${problem}`)
      const key = bucketKey(form.bucketname)
      const existing = await this.store.get<BucketEntry>(key)
      let change: BucketChange
      if (form.op === 'delete') {
        if (existing === undefined) throw new BucketNotFoundError(form.bucketname)
        // sync: the caller is told the change is made; it must survive a power cut.
        await this.store.batch([{ type: 'del', key }], { sync: true })
        change = { op: 'delete', bucketname: form.bucketname }
      } else {
        const entry = applyForm(existing, form)
        await this.store.batch([{ type: 'put', key, value: entry }], { sync: true })
        change = { op: form.op, entry }
      }
      for (const listener of this.listeners) listener(change)
      return change
    })
  }
}
