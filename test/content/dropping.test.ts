// ContentStore.dropping: a batch that marks files released empties their content files after it
// committed, leaves them after it failed, and whatever happens no file stays waiting for an
// emptying that will never come.
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { ContentStore } from '../../src/content/content'

async function store (t: Tap.Test): Promise<ContentStore> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 's3link-dropping-'))
  t.teardown(() => fs.promises.rm(dir, { recursive: true, force: true }))
  const content = await ContentStore.create(dir)
  t.teardown(() => content.close())
  return content
}

const size = async (content: ContentStore, ino: number): Promise<number> => (await fs.promises.stat(content.pathOf(ino))).size
const within = async <T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> =>
  await Promise.race([p, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ms))])

t.test('emptied after the batch, not during it; left alone when the batch fails', async (t) => {
  const content = await store(t)
  for (const ino of [1, 2]) await fs.promises.writeFile(content.pathOf(ino), 'stale bytes')
  let seenDuring = -1
  await content.dropping(async (drop) => {
    drop(1)
    t.equal(await within(content.acquire(1), 100), 'timeout', 'a descriptor waits for the emptying')
    seenDuring = await size(content, 1)
  })
  t.equal(seenDuring, 11, 'not emptied before the batch is done')
  t.equal(await size(content, 1), 0, 'emptied after it')
  await content.release(1)
  await t.rejects(content.dropping(async (drop) => { drop(2); throw new Error('commit failed') }), /commit failed/)
  t.equal(await size(content, 2), 11, 'a failed batch leaves the bytes')
  t.not(await within(content.acquire(2), 1000), 'timeout')
  await content.release(2)
})

t.test('an emptying that fails is reported, and the other files of the batch are not left waiting', async (t) => {
  const content = await store(t)
  await fs.promises.mkdir(content.pathOf(3)) // truncate(2) of a directory fails: EISDIR
  await fs.promises.writeFile(content.pathOf(4), 'stale bytes')
  await t.rejects(content.dropping(async (drop) => { drop(3); drop(4) }), { code: 'EISDIR' })
  t.equal(await size(content, 4), 0, 'the other file is emptied')
  t.not(await within(content.acquire(4), 1000), 'timeout', 'and can be opened')
  await content.release(4)
})
