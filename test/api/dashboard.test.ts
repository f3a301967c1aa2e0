/// <reference lib="dom" />
// The dashboard (GET /) in a real browser: Debian's chromium driven by playwright-core, against the
// real daemon's control API and, for "Test", the embedded S3 server. Flows: wrong token, log in, add
// a bucket (its secret never shown), an invalid name rejected next to its field with the table
// unchanged, edit, test, remove with confirmation, log out.
//
// Needs `apt-get install chromium` (make deps) and a build (`npx tsc -p tsconfig.json`).
// DASHBOARD_SCREENSHOT=/tmp/dashboard.png saves a screenshot of the bucket page.
import t from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import { spawn, type ChildProcess } from 'node:child_process'
import readline from 'node:readline'
import { chromium, type Browser, type Page } from 'playwright-core'
import { startFs, REPO } from '../fixtures/harness'

const CHROMIUM = '/usr/bin/chromium'
const S3_MAIN = path.join(REPO, 'dist/repo/embedded-s3-main.js')
const BUCKET = 'dash-a'
const SECRET = 'dashSecret-' + Math.random().toString(36).slice(2) + '-never-shown'

interface Teardown { teardown: (fn: () => Promise<void> | void) => void }

/** The API URL the daemon writes to STATE_DIR/api.url once it listens, or null after `ms`. */
async function waitForApiUrl (stateDir: string, ms: number): Promise<string | null> {
  const file = path.join(stateDir, 'api.url')
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((resolve) => setTimeout(resolve, 100))) {
    const text = (await fs.promises.readFile(file, 'utf8').catch(() => '')).trim()
    if (text !== '') return (text.startsWith('{') ? JSON.parse(text).url : text).replace(/\/+$/, '')
  }
  return null
}

/** The embedded S3 server as a child process with one bucket; stopped at teardown. */
async function startS3 (t: Teardown, dir: string, bucket: string): Promise<string> {
  const child: ChildProcess = spawn(process.execPath, [S3_MAIN, '--directory', dir, '--port', '0', '--bucket', bucket],
    { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  })
  const line = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).once('line', resolve)
    child.once('exit', (code) => reject(new Error(`embedded S3 exited with ${code}`)))
  })
  return JSON.parse(line).endpoint
}

async function launch (t: Teardown): Promise<Browser> {
  // launch() gives every run a fresh temporary profile (user-data-dir) and removes it on close.
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--no-proxy-server',
      '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  t.teardown(() => browser.close())
  return browser
}

const rowNames = (page: Page): Promise<string[]> => page.locator('#bucket-table tbody tr').evaluateAll(
  (rows) => rows.map((r) => (r as HTMLElement).dataset.bucket ?? ''))

t.test('dashboard flows in Chromium', async (t) => {
  if (!fs.existsSync(CHROMIUM)) return t.skip(`${CHROMIUM} is not installed (apt-get install chromium, or make deps)`, () => {})
  const tfs = await startFs(t)
  const apiUrl = await waitForApiUrl(tfs.stateDir, 10_000)
  if (apiUrl === null) return t.skip('the daemon wrote no STATE_DIR/api.url within 10 s: the control API is not there yet', () => {})
  const { token } = JSON.parse(await fs.promises.readFile(path.join(tfs.stateDir, 'credentials.json'), 'utf8'))
  const s3Endpoint = await startS3(t, path.join(tfs.root, 's3'), BUCKET)

  const browser = await launch(t)
  const page = await browser.newPage()
  page.setDefaultTimeout(10_000)
  const pageErrors: string[] = []
  page.on('pageerror', (err) => pageErrors.push(err.message))
  page.on('console', (msg) => { if (msg.type() === 'error' && !/status of 4\d\d/.test(msg.text())) pageErrors.push(msg.text()) })

  await t.test('a wrong token is refused with a message', async (t) => {
    await page.goto(apiUrl + '/')
    await page.getByLabel('Admin token').fill('not-the-token')
    await page.getByRole('button', { name: 'Log in' }).click()
    await page.getByText('Wrong token').waitFor()
    t.equal(await page.getByLabel('Admin token').getAttribute('aria-invalid'), 'true')
    t.notOk(await page.locator('#app').isVisible(), 'the bucket page stays hidden')
  })

  await t.test('log in with the admin token; the header names the file system', async (t) => {
    await page.getByLabel('Admin token').fill(token)
    await page.getByRole('button', { name: 'Log in' }).click()
    await page.getByRole('heading', { name: 'Buckets' }).waitFor()
    const info = await page.locator('#fs-info').textContent()
    t.match(info, tfs.name)
    t.match(info, /fs-[0-9a-f]{17}/)
    t.same(await rowNames(page), [])
  })

  await t.test('add a bucket: listed with its secret set, the secret shown nowhere', async (t) => {
    await page.getByRole('button', { name: 'Add bucket' }).click()
    await page.getByLabel('Bucket name').fill(BUCKET)
    await page.getByLabel('Cloud').selectOption('minio')
    await page.getByLabel('Endpoint').fill('http://127.0.0.1:9')
    await page.getByLabel('Region').fill('us-east-1')
    await page.getByLabel('Access key id').fill('AKIADASHBOARDTEST')
    await page.getByLabel('Secret access key').fill(SECRET)
    await page.getByLabel('Path-style addressing').check()
    await page.getByLabel('Checksums').selectOption('WHEN_REQUIRED')
    await page.getByRole('button', { name: 'Save' }).click()
    await page.getByRole('status').getByText(`Bucket ${BUCKET} saved`).waitFor()
    const row = page.getByRole('row', { name: new RegExp(BUCKET) })
    t.same(await row.locator('th, td').evaluateAll((cells) => cells.slice(0, 5).map((c) => c.textContent)),
      [BUCKET, 'minio', 'http://127.0.0.1:9', 'static', 'yes'], 'name, cloud, endpoint, credentials, secret: yes')
    t.notOk(await page.locator('#bucket-form').isVisible(), 'the form is closed')
    const values = await page.locator('input').evaluateAll((inputs) => inputs.map((i) => (i as HTMLInputElement).value))
    t.notOk((await page.content()).includes(SECRET), 'the secret is not in the page HTML')
    t.notOk(values.some((v) => v.includes(SECRET)), 'no input holds the secret')
    const stored = await page.evaluate(() => JSON.stringify([{ ...sessionStorage }, { ...localStorage }]))
    t.notOk(stored.includes(SECRET), 'nor does browser storage')
  })

  await t.test('an invalid bucket name: the message is next to the field, the table unchanged', async (t) => {
    const before = await page.locator('#bucket-table tbody').innerHTML()
    await page.getByRole('button', { name: 'Add bucket' }).click()
    await page.getByLabel('Bucket name').fill('Bad_Name!')
    await page.getByRole('button', { name: 'Save' }).click()
    const input = page.getByLabel('Bucket name')
    await page.locator('#bucket-form [aria-invalid="true"]').waitFor()
    t.equal(await input.getAttribute('aria-invalid'), 'true')
    const describedBy = await input.getAttribute('aria-describedby')
    t.ok(describedBy, 'the field points at its message')
    const message = await page.locator(`#${describedBy}`).textContent()
    t.ok(message !== null && message.trim().length > 0, `message shown: ${message}`)
    t.equal(await page.locator('#alert').textContent(), '', 'no general alert for a field error')
    t.equal(await page.locator('#bucket-table tbody').innerHTML(), before, 'table unchanged')
    await page.getByRole('button', { name: 'Cancel' }).click()
  })

  await t.test('edit: modify the endpoint; the blank secret stays set', async (t) => {
    await page.getByRole('button', { name: `Edit ${BUCKET}` }).click()
    t.equal(await page.getByLabel('Bucket name').inputValue(), BUCKET)
    t.equal(await page.getByLabel('Secret access key').inputValue(), '', 'the secret is not filled in')
    await page.getByLabel('Endpoint').fill(s3Endpoint)
    await page.getByRole('button', { name: 'Save' }).click()
    await page.getByRole('status').getByText(`Bucket ${BUCKET} updated`).waitFor()
    const cells = await page.getByRole('row', { name: new RegExp(BUCKET) }).locator('td').allTextContents()
    t.equal(cells[1], s3Endpoint)
    t.equal(cells[3], 'yes')
  })

  await t.test('test: wrong keys, then the right ones', async (t) => {
    const row = page.getByRole('row', { name: new RegExp(BUCKET) })
    await row.getByRole('button', { name: `Test ${BUCKET}` }).click()
    const result = page.locator(`tr[data-bucket="${BUCKET}"] .test-result`)
    await result.filter({ hasText: /\d+ ms/ }).waitFor()
    t.match(await result.textContent(), /^reachable, not authorized/)

    await page.getByRole('button', { name: `Edit ${BUCKET}` }).click()
    await page.getByLabel('Access key id').fill('S3RVER')
    await page.getByLabel('Secret access key').fill('S3RVER')
    await page.getByRole('button', { name: 'Save' }).click()
    await page.getByRole('status').getByText(`Bucket ${BUCKET} updated`).waitFor()
    await page.getByRole('button', { name: `Test ${BUCKET}` }).click()
    await page.locator(`tr[data-bucket="${BUCKET}"] .test-result`).filter({ hasText: /\d+ ms/ }).waitFor()
    t.match(await page.locator(`tr[data-bucket="${BUCKET}"] .test-result`).textContent(), /^reachable, authorized, \d+ ms/)
    if (process.env.DASHBOARD_SCREENSHOT) await page.screenshot({ path: process.env.DASHBOARD_SCREENSHOT, fullPage: true })
  })

  await t.test('remove asks for confirmation', async (t) => {
    page.once('dialog', (d) => { void d.dismiss() })
    await page.getByRole('button', { name: `Remove ${BUCKET}` }).click()
    t.same(await rowNames(page), [BUCKET], 'cancelled: still listed')
    page.once('dialog', (d) => { t.match(d.message(), BUCKET); void d.accept() })
    await page.getByRole('button', { name: `Remove ${BUCKET}` }).click()
    await page.getByRole('status').getByText(`Bucket ${BUCKET} removed`).waitFor()
    t.same(await rowNames(page), [])
    const res = await fetch(apiUrl + '/api/buckets', { headers: { Authorization: `Bearer ${token}` } })
    const list = await res.json() as { buckets: unknown[] }
    t.same(list.buckets, [], 'gone from the daemon too')
  })

  await t.test('log out forgets the token', async (t) => {
    await page.getByRole('button', { name: 'Log out' }).click()
    await page.getByLabel('Admin token').waitFor()
    t.equal(await page.evaluate(() => sessionStorage.length), 0)
    await page.reload()
    t.ok(await page.getByLabel('Admin token').isVisible(), 'a reload asks for the token again')
  })

  t.same(pageErrors, [], 'no script errors in the page')
  t.notOk(tfs.readLog().includes(SECRET), 'the secret is not in the daemon log')
})
