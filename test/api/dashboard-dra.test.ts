/// <reference lib="dom" />
// Data repository associations in the dashboard, in a real browser (Debian's chromium driven by
// playwright-core) against the real daemon, its FSx API and the embedded S3 server. Flows: create a
// DRA (it reaches AVAILABLE and its directory appears in the mount), an overlapping one refused with
// the FSx error next to the form and the list unchanged, one on a bucket nobody can use shown
// MISCONFIGURED with its reason (its odd path shown as text, not HTML), re-checked once the bucket
// is registered, edit events, delete with and without the data.
//
// Needs `apt-get install chromium` (make deps) and a build (`npx tsc -p tsconfig.json`).
// DASHBOARD_DRA_SCREENSHOT=/tmp/dras.png saves a screenshot with one AVAILABLE and one MISCONFIGURED association.
import t from 'tap'
import fs from 'node:fs'
import { chromium, type Page } from 'playwright-core'
import { isolatedAwsEnv, startFs, startS3 } from '../fixtures/harness'
import { until } from '../fixtures/until'

const CHROMIUM = '/usr/bin/chromium'
const BUCKET = 'dash-bucket'
// Not in the bucket table at first, so the default credential chain, which finds nothing in
// isolatedAwsEnv.
const UNUSABLE = 'dash-nobody'
const ODD_PATH = '/ns2<img src=x onerror=alert(1)>'

/** [id, lifecycle] of every listed association. */
const listed = (page: Page): Promise<string[][]> => page.locator('#dra-table tbody tr').evaluateAll(
  (rows) => rows.map((r) => [(r as HTMLElement).dataset.association ?? '', r.querySelector('.badge')?.textContent ?? '']))

t.test('data repository associations in Chromium', async (t) => {
  if (!fs.existsSync(CHROMIUM)) return t.skip(`${CHROMIUM} is not installed (apt-get install chromium, or make deps)`, () => {})
  const s3 = await startS3(t, [BUCKET, UNUSABLE])
  const tfs = await startFs(t, { env: isolatedAwsEnv(), config: { draCheckIntervalMs: 500 } })
  const added = await tfs.cli(['bucket', 'add', BUCKET, '--cloud', 'other', '--endpoint', s3.endpoint,
    '--access-key-id', 'S3RVER', '--secret-access-key', 'S3RVER'])
  t.equal(added.code, 0, `bucket add: ${added.stderr}`)

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

  const row = (fsPath: string) => page.locator('#dra-table tbody tr').filter({ has: page.getByText(fsPath, { exact: true }) })
  const cells = (fsPath: string): Promise<string[]> => row(fsPath).locator('th, td').allInnerTexts()
  const idOf = async (fsPath: string): Promise<string> => await row(fsPath).getAttribute('data-association') ?? ''
  const form = page.locator('#dra-form')

  async function create (fsPath: string, repoPath: string, importEvents: string[]): Promise<void> {
    await page.getByRole('button', { name: 'New association' }).click()
    await form.getByLabel('File system path').fill(fsPath)
    await form.getByLabel('Data repository path').fill(repoPath)
    for (const e of importEvents) await form.getByRole('group', { name: 'Import events' }).getByLabel(e).check()
    await form.getByRole('button', { name: 'Create' }).click()
  }

  await t.test('log in: the section is there, empty', async (t) => {
    await page.goto(tfs.apiUrl() + '/')
    await page.getByLabel('Admin token').fill(tfs.credentials().token)
    await page.getByRole('button', { name: 'Log in' }).click()
    await page.getByRole('heading', { name: 'Data repository associations' }).waitFor()
    await page.locator('#no-dras').waitFor()
    t.same(await listed(page), [])
  })

  await t.test('create: listed, reaches AVAILABLE, the directory is in the mount', async (t) => {
    await create('/ns1', `s3://${BUCKET}/p/`, ['NEW', 'CHANGED', 'DELETED'])
    await page.getByRole('status').getByText(/created: \/ns1 ↔ s3:\/\/dash-bucket\/p\//).waitFor()
    t.notOk(await form.isVisible(), 'the form is closed')
    await row('/ns1').locator('.badge', { hasText: 'AVAILABLE' }).waitFor()
    const [id, paths, lifecycle, imports, exports] = await cells('/ns1')
    t.match(id, /^dra-[0-9a-f]{17}$/)
    t.equal(paths, `/ns1\n↔ s3://${BUCKET}/p/`)
    t.equal(lifecycle, 'AVAILABLE')
    t.equal(imports, 'NEW, CHANGED, DELETED')
    t.equal(exports, 'off')
    t.equal((await tfs.sh('test -d ns1')).code, 0, '/ns1 exists in the mount')
  })

  await t.test('an overlapping create: the FSx error next to the form, nothing changed', async (t) => {
    const before = await listed(page)
    await create('/ns1/sub', `s3://${BUCKET}/q/`, [])
    const error = form.locator('#dra-form-error')
    await error.filter({ hasText: 'BadRequest' }).waitFor()
    t.match(await error.textContent(), /^BadRequest \(HTTP 400\): FileSystemPath \/ns1\/sub overlaps \/ns1 of dra-/)
    t.equal(await form.getByLabel('File system path').getAttribute('aria-invalid'), 'true', 'the field at fault is marked')
    t.ok(await form.isVisible(), 'the form stays open with what was typed')
    t.equal(await form.getByLabel('File system path').inputValue(), '/ns1/sub')
    t.same(await listed(page), before, 'list unchanged')
    t.equal((await tfs.sh('test -e ns1/sub')).code, 1, 'no directory made')
    await form.getByRole('button', { name: 'Cancel' }).click()
  })

  await t.test('a bucket nobody can use: MISCONFIGURED with the reason; the path is text', async (t) => {
    await create(ODD_PATH, `s3://${UNUSABLE}/x/`, [])
    await row(ODD_PATH).locator('.badge', { hasText: 'MISCONFIGURED' }).waitFor()
    t.match(await row(ODD_PATH).locator('.failure').textContent(), `cannot use the S3 bucket ${UNUSABLE}: no usable credentials`)
    t.equal(await page.locator('#dra-table img').count(), 0, 'the path was not parsed as HTML')
    if (process.env.DASHBOARD_DRA_SCREENSHOT) await page.screenshot({ path: process.env.DASHBOARD_DRA_SCREENSHOT, fullPage: true })
  })

  await t.test('re-check: an update naming only the association; fixed, it becomes AVAILABLE', async (t) => {
    const fixed = await tfs.cli(['bucket', 'add', UNUSABLE, '--cloud', 'other', '--endpoint', s3.endpoint,
      '--access-key-id', 'S3RVER', '--secret-access-key', 'S3RVER'])
    t.equal(fixed.code, 0, `bucket add: ${fixed.stderr}`)
    const id = await idOf(ODD_PATH)
    const sent = page.waitForRequest((r) => r.headers()['x-amz-target']?.endsWith('.UpdateDataRepositoryAssociation'))
    await page.getByRole('button', { name: `Re-check ${id}` }).click()
    t.same((await sent).postDataJSON(), { AssociationId: id })
    await page.getByRole('status').getByText(`${id} is being checked again`).waitFor()
    await row(ODD_PATH).locator('.badge', { hasText: 'AVAILABLE' }).waitFor()
    t.equal(await row(ODD_PATH).locator('.failure').count(), 0, 'no failure shown any more')
  })

  await t.test('edit events', async (t) => {
    const id = await idOf('/ns1')
    await page.getByRole('button', { name: `Edit events ${id}` }).click()
    const imports = form.getByRole('group', { name: 'Import events' })
    const exports = form.getByRole('group', { name: 'Export events' })
    t.ok(await imports.getByLabel('DELETED').isChecked(), 'the current events are ticked')
    t.notOk(await exports.getByLabel('NEW').isChecked())
    t.equal(await form.getByLabel('File system path').getAttribute('readonly'), '', 'paths cannot change')
    await imports.getByLabel('DELETED').uncheck()
    await exports.getByLabel('NEW').check()
    await exports.getByLabel('CHANGED').check()
    await form.getByRole('button', { name: 'Update' }).click()
    await page.getByRole('status').getByText(`${id} updated`).waitFor()
    await row('/ns1').locator('.badge', { hasText: 'AVAILABLE' }).waitFor()
    // The row was AVAILABLE before the update too: the table's refresh may still be on its way.
    let shown: string[] = []
    await until('the row shows the new events', async () => {
      shown = (await cells('/ns1')).slice(3, 5)
      return shown[0] === 'NEW, CHANGED' && shown[1] === 'NEW, CHANGED'
    }, 10_000).catch(() => undefined)
    t.same(shown, ['NEW, CHANGED', 'NEW, CHANGED'], 'import and export events')
  })

  await t.test('delete asks first; with "delete the data" the directory goes too', async (t) => {
    t.equal((await tfs.sh('echo hello > ns1/f')).code, 0)
    const id = await idOf('/ns1')
    const dialog = page.getByRole('dialog')
    await page.getByRole('button', { name: `Delete ${id}` }).click()
    t.match(await dialog.textContent(), `Delete ${id}, which links /ns1 to s3://${BUCKET}/p/?`)
    await dialog.getByRole('button', { name: 'Cancel' }).click()
    await dialog.waitFor({ state: 'hidden' })
    t.equal(await row('/ns1').count(), 1, 'cancelled: still listed')

    await page.getByRole('button', { name: `Delete ${id}` }).click()
    await dialog.getByLabel('Also delete the data in the file system').check()
    await dialog.getByRole('button', { name: 'Delete' }).click()
    await page.getByRole('status').getByText(`${id} is being deleted, with its data`).waitFor()
    await row('/ns1').waitFor({ state: 'detached' })
    t.equal((await tfs.sh('test -e ns1')).code, 1, '/ns1 is gone from the mount')
  })

  await t.test('delete without the data: the directory stays', async (t) => {
    const id = await idOf(ODD_PATH)
    await page.getByRole('button', { name: `Delete ${id}` }).click()
    await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click()
    await row(ODD_PATH).waitFor({ state: 'detached' })
    await page.locator('#no-dras').waitFor()
    t.equal((await tfs.sh(`test -d '${ODD_PATH.slice(1)}'`)).code, 0, 'the directory is still there')
  })

  t.same(pageErrors, [], 'no script errors in the page')
})
