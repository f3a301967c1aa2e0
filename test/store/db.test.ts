// The Store's batches (src/store/db.ts): all of a batch or nothing, puts and deletes together.
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Store } from '../../src/store/db'

async function open (t: Tap.Test): Promise<{ store: Store, dir: string }> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 's3link-store-'))
  t.teardown(() => fs.promises.rm(dir, { recursive: true, force: true }))
  const store = await Store.open(dir)
  t.teardown(async () => { await store.close() })
  return { store, dir }
}

t.test('a batch puts and deletes together, and survives a reopen', async (t) => {
  const { store, dir } = await open(t)
  await store.batch([{ type: 'put', key: 'a', value: { n: 1 } }, { type: 'put', key: 'b', value: 'two' }])
  await store.batch([{ type: 'del', key: 'a' }, { type: 'put', key: 'c', value: [3] }], { sync: true })
  t.same(await store.getMany(['a', 'b', 'c']), [undefined, 'two', [3]])
  await store.close()
  const again = await Store.open(dir)
  t.teardown(async () => { await again.close() })
  t.same(await again.getMany(['a', 'b', 'c']), [undefined, 'two', [3]], 'as written')
})

t.test('a batch with an invalid operation fails whole: nothing of it is written', async (t) => {
  const { store } = await open(t)
  await store.batch([{ type: 'put', key: 'kept', value: 1 }])
  await t.rejects(store.batch([
    { type: 'put', key: 'x', value: 1 },
    { type: 'del', key: 'kept' },
    { type: 'put', key: 'y', value: undefined }
  ]))
  t.same(await store.getMany(['x', 'kept', 'y']), [undefined, 1, undefined], 'the store is as before')
  await store.batch([{ type: 'put', key: 'x', value: 2 }])
  t.equal(await store.get('x'), 2, 'and takes the next batch')
})
