/// <reference lib="dom" />
// Data repository tasks in the dashboard, in a real browser (Debian's chromium driven by
// playwright-core) against the real daemon, its FSx API and the embedded S3 server: an import
// started from the page reaches SUCCEEDED with its counters; with S3 held by a proxy, an EXECUTING
// and a PENDING task are cancelled from the page; cancelling a task that has ended shows the FSx
// error next to the section.
//
// Needs `apt-get install chromium` (make deps) and a build (`npx tsc -p tsconfig.json`).
import t from 'tap'
import fs from 'node:fs'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { chromium, type Page } from 'playwright-core'
import { startFs, startS3 } from '../fixtures/harness'
import { fsx } from '../fixtures/aws'
import { startProxy } from '../fixtures/proxy'
import { s3Client } from '../fixtures/s3'

const CHROMIUM = '/usr/bin/chromium'
const BUCKET = 'dash-tasks'
const TARGET = 'AWSSimbaAPIService_v20180301.'

/** [id, lifecycle, has a Cancel button] of every listed task, top to bottom. */
const listed = (page: Page): Promise<Array<[string, string, boolean]>> => page.locator('#task-table tbody tr').evaluateAll(
  (rows) => rows.map((r) => [(r as HTMLElement).dataset.task ?? '', r.querySelector('.badge')?.textContent ?? '', r.querySelector('button') !== null]))

t.test('data repository tasks in Chromium', async (t) => {
  if (!fs.existsSync(CHROMIUM)) return t.skip(`${CHROMIUM} is not installed (apt-get install chromium, or make deps)`, () => {})
  const s3 = await startS3(t, [BUCKET])
  const c = s3Client(t, s3.endpoint)
  for (const key of ['a', 'b', 'sub/c']) await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: `p/${key}`, Body: `${key}\n` }))
  // The daemon reaches S3 through a proxy that can hold every request: tasks stay EXECUTING/PENDING.
  const proxy = await startProxy(t, s3.port)
  t.teardown(() => proxy.close())
  const tfs = await startFs(t, { config: { draCheckIntervalMs: 500 } })
  const added = await tfs.cli(['bucket', 'add', BUCKET, '--cloud', 'other', '--endpoint', proxy.endpoint,
    '--access-key-id', 'S3RVER', '--secret-access-key', 'S3RVER'])
  t.equal(added.code, 0, `bucket add: ${added.stderr}`)
  const linked = await tfs.cli(['dra', 'create', '/ns1', `s3://${BUCKET}/p/`, '--wait'])
  t.equal(linked.code, 0, `dra create: ${linked.stderr}`)

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--no-proxy-server',
      '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  page.setDefaultTimeout(10_000)
  const pageErrors: string[] = []
  page.on('pageerror', (err) => pageErrors.push(err.message))
  page.on('console', (msg) => { if (msg.type() === 'error' && !/status of 4\d\d/.test(msg.text())) pageErrors.push(msg.text()) })
  const row = (id: string) => page.locator(`#task-table tbody tr[data-task="${id}"]`)
  const badge = (id: string, lifecycle: string) => row(id).locator('.badge', { hasText: new RegExp(`^${lifecycle}$`) })
  const startImport = async (): Promise<string> => {
    const created = page.waitForResponse((r) => r.request().headers()['x-amz-target'] === TARGET + 'CreateDataRepositoryTask')
    await page.getByRole('button', { name: 'Import', exact: true }).click()
    const id = (await (await created).json()).DataRepositoryTask.TaskId as string
    await row(id).waitFor()
    return id
  }

  await t.test('log in: the section is there, empty', async (t) => {
    await page.goto(tfs.apiUrl() + '/')
    await page.getByLabel('Admin token').fill(tfs.credentials().token)
    await page.getByRole('button', { name: 'Log in' }).click()
    await page.getByRole('heading', { name: 'Tasks' }).waitFor()
    await page.locator('#no-tasks').waitFor()
    t.same(await listed(page), [])
  })

  await t.test('import from the page: SUCCEEDED with its counters, no Cancel button', async (t) => {
    const id = await startImport()
    await page.getByRole('status').getByText(`Import task ${id} started.`).waitFor()
    await badge(id, 'SUCCEEDED').waitFor()
    const [cellId, type, lifecycle, paths, progress, created, ended, actions] = await row(id).locator('th, td').allInnerTexts()
    t.equal(cellId, id)
    t.equal(type, 'IMPORT_METADATA_FROM_REPOSITORY')
    t.equal(lifecycle, 'SUCCEEDED')
    t.equal(paths, 'all associations')
    t.equal(progress.trim(), '3 succeeded, 0 failed of 3')
    t.same(await row(id).locator('progress').evaluate((p: HTMLProgressElement) => [p.value, p.max]), [3, 3])
    t.not(created, '—')
    t.not(ended, '—')
    t.equal(actions.trim(), '', 'an ended task cannot be cancelled')
    t.equal((await tfs.sh('cat ns1/sub/c')).stdout, 'sub/c\n', 'the objects are in the mount')
  })

  await t.test('S3 held: cancel an EXECUTING and a PENDING task from the page', async (t) => {
    proxy.pause()
    t.teardown(() => proxy.resume())
    const running = await startImport()
    await badge(running, 'EXECUTING').waitFor()
    const queued = await startImport()
    await badge(queued, 'PENDING').waitFor()
    const rows = await listed(page)
    t.same(rows.slice(0, 2), [[queued, 'PENDING', true], [running, 'EXECUTING', true]], 'newest first; both can be cancelled')

    await page.getByRole('button', { name: `Cancel ${queued}` }).click()
    await page.getByRole('status').getByText(`Task ${queued} is CANCELED.`).waitFor()
    await badge(queued, 'CANCELED').waitFor()
    await page.getByRole('button', { name: `Cancel ${running}` }).click()
    await page.getByRole('status').getByText(`Task ${running} is CANCELING.`).waitFor()
    // The requests held by the proxy are aborted by the cancel; the page polls until it ends.
    await badge(running, 'CANCELED').waitFor()
    t.same((await listed(page)).map(([, , cancel]) => cancel), [false, false, false], 'no Cancel button once ended')
  })

  await t.test('cancelling a task that has ended: the FSx error next to the section', async (t) => {
    proxy.pause()
    t.teardown(() => proxy.resume())
    const id = await startImport()
    await badge(id, 'EXECUTING').waitFor()
    // Hold the page's listings so that the row, and its Cancel button, stay as drawn.
    let release = (): void => {}
    const held = new Promise<void>((resolve) => { release = resolve })
    await page.route('**/', async (route) => {
      if (route.request().headers()['x-amz-target'] === TARGET + 'DescribeDataRepositoryTasks') await held
      await route.continue()
    })
    t.teardown(async () => { release(); await page.unrouteAll({ behavior: 'wait' }) })
    const r = await fsx(tfs, 'CancelDataRepositoryTask', { TaskId: id })
    t.equal(r.status, 200, JSON.stringify(r.body))
    for (let i = 0; i < 100 && (await fsx(tfs, 'DescribeDataRepositoryTasks', { TaskIds: [id] })).body.DataRepositoryTasks[0].Lifecycle !== 'CANCELED'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    await page.getByRole('button', { name: `Cancel ${id}` }).click()
    const alert = page.locator('#task-alert')
    await alert.filter({ hasText: 'DataRepositoryTaskEnded' }).waitFor()
    t.match(await alert.textContent(), /^DataRepositoryTaskEnded \(HTTP 400\): /)
    release()
    await badge(id, 'CANCELED').waitFor()
  })

  t.same(pageErrors, [], 'no script errors in the page')
})
