// s3link dashboard: plain ES module, no build. Talks to the control API on the same origin with the
// admin token as a bearer token (kept in sessionStorage only). Secrets are write-only: the API never
// returns them and this page never displays them.
const TOKEN_KEY = 's3link.token'
const FIELDS = ['bucketname', 'cloud', 'endpoint', 'region', 'accessKeyId', 'secretAccessKey', 'accessRole',
  'accessRoleExt', 'sharedSecret', 'pathStyle', 'checksums', 'sse', 'kmsKeyId']
const SECRETS = ['secretAccessKey', 'sharedSecret']
const $ = (sel) => document.querySelector(sel)
const form = $('#bucket-form')
let buckets = []
let editing = null // the bucket view being edited, or null when adding

const rejected = (err) => err instanceof ApiError && (err.status === 401 || err.status === 403)

class ApiError extends Error {
  constructor (status, body) {
    super(body?.message ?? `HTTP ${status}`)
    this.status = status
    this.body = body
  }
}

async function api (path, { method = 'GET', form: fields } = {}) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) ?? ''}`, Accept: 'application/json' }
  let body
  if (fields !== undefined) {
    headers['Content-Type'] = 'application/x-www-form-urlencoded'
    body = new URLSearchParams(fields).toString()
  }
  const res = await fetch(path, { method, headers, body, cache: 'no-store' })
  const data = await res.json().catch(() => null)
  if (!res.ok) throw new ApiError(res.status, data)
  return data
}

function alertError (err) {
  if (rejected(err)) return logout('The token was rejected; log in again.')
  $('#alert').textContent = err instanceof ApiError
    ? `${err.body?.error ?? 'Error'} (HTTP ${err.status}): ${err.message}`
    : `Request failed: ${err.message}`
}

function say (text) {
  $('#alert').textContent = ''
  $('#status').textContent = text
}

// ---- login ----

function showLogin (message = '') {
  $('#app').hidden = true
  $('#logout').hidden = true
  $('#fs-info').textContent = ''
  $('#login').hidden = false
  const input = $('#token')
  $('#login-error').textContent = message
  input.setAttribute('aria-invalid', message === '' ? 'false' : 'true')
  input.focus()
}

function logout (message = '') {
  sessionStorage.removeItem(TOKEN_KEY)
  buckets = []
  $('#bucket-table tbody').replaceChildren()
  closeForm()
  showLogin(message)
}

async function enter () {
  const status = await api('/api/status')
  $('#fs-info').textContent = `${status.name} · ${status.id} · mounted at ${status.mountpoint}`
  $('#login').hidden = true
  $('#app').hidden = false
  $('#logout').hidden = false
  await loadBuckets()
}

$('#login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault()
  const input = $('#token')
  const token = input.value.trim()
  input.value = ''
  if (token === '') return showLogin('Enter the admin token.')
  sessionStorage.setItem(TOKEN_KEY, token)
  try {
    await enter()
  } catch (err) {
    sessionStorage.removeItem(TOKEN_KEY)
    showLogin(rejected(err) ? 'Wrong token: the API refused it.' : `Cannot reach the API: ${err.message}`)
  }
})
$('#logout').addEventListener('click', () => logout('Logged out.'))

// ---- bucket table ----

async function loadBuckets () {
  buckets = (await api('/api/buckets')).buckets
  buckets.sort((a, b) => a.bucketname.localeCompare(b.bucketname))
  const rows = buckets.map((b) => {
    const tr = document.createElement('tr')
    tr.dataset.bucket = b.bucketname
    const secret = b.hasSecretAccessKey || b.hasSharedSecret ? 'yes' : 'no'
    for (const text of [b.bucketname, b.cloud, b.endpoint || '(default)', b.credentials, secret]) {
      const td = document.createElement(tr.children.length === 0 ? 'th' : 'td')
      if (tr.children.length === 0) td.scope = 'row'
      td.textContent = text
      tr.append(td)
    }
    const actions = document.createElement('td')
    actions.className = 'actions'
    for (const [label, fn] of [['Edit', openEdit], ['Test', testBucket], ['Remove', removeBucket]]) {
      const button = document.createElement('button')
      button.type = 'button'
      button.textContent = label
      button.setAttribute('aria-label', `${label} ${b.bucketname}`)
      button.addEventListener('click', () => fn(b, tr))
      actions.append(button)
    }
    const result = document.createElement('td')
    result.className = 'test-result'
    result.setAttribute('aria-live', 'polite')
    tr.append(actions, result)
    return tr
  })
  $('#bucket-table tbody').replaceChildren(...rows)
  $('#no-buckets').hidden = rows.length > 0
}

async function testBucket (b, tr) {
  const cell = tr.querySelector('.test-result')
  cell.textContent = 'testing…'
  cell.className = 'test-result'
  try {
    const r = await api(`/api/buckets/${encodeURIComponent(b.bucketname)}/test`, { method: 'POST' })
    const parts = [r.reachable ? 'reachable' : 'unreachable']
    if (r.reachable) parts.push(r.authorized ? 'authorized' : 'not authorized')
    if (typeof r.latencyMs === 'number') parts.push(`${Math.round(r.latencyMs)} ms`)
    cell.textContent = parts.join(', ') + (r.error ? ` — ${r.error}` : '')
    cell.classList.add(r.reachable && r.authorized ? 'ok' : 'bad')
  } catch (err) {
    cell.textContent = ''
    alertError(err)
  }
}

async function removeBucket (b) {
  if (!window.confirm(`Remove bucket ${b.bucketname} from the table? Objects in the bucket are not touched.`)) return
  try {
    await api('/add-mod-del-bucket', { method: 'POST', form: { op: 'delete', bucketname: b.bucketname } })
    if (editing?.bucketname === b.bucketname) closeForm()
    await loadBuckets()
    say(`Bucket ${b.bucketname} removed.`)
  } catch (err) { alertError(err) }
}

// ---- add / edit form ----

function clearFieldErrors () {
  for (const el of form.querySelectorAll('[aria-invalid="true"]')) el.removeAttribute('aria-invalid')
  for (const el of form.querySelectorAll('.field-error')) el.textContent = ''
  for (const name of FIELDS) form.elements[name].removeAttribute('aria-describedby')
}

function openForm (b) {
  editing = b
  form.reset()
  clearFieldErrors()
  $('#alert').textContent = ''
  form.classList.toggle('editing', b !== null)
  $('#form-title').textContent = b === null ? 'Add bucket' : `Edit bucket ${b.bucketname}`
  form.elements.op.value = b === null ? 'add' : 'modify'
  form.elements.bucketname.readOnly = b !== null
  if (b !== null) {
    for (const name of FIELDS) {
      if (SECRETS.includes(name)) continue
      const el = form.elements[name]
      if (el.type === 'checkbox') el.checked = b[name] === true
      else el.value = b[name] ?? ''
    }
  }
  form.hidden = false
  form.elements[b === null ? 'bucketname' : 'endpoint'].focus()
}

function closeForm () {
  editing = null
  form.reset()
  clearFieldErrors()
  form.hidden = true
}

function openEdit (b) { openForm(b) }
$('#add-bucket').addEventListener('click', () => openForm(null))
$('#cancel').addEventListener('click', () => { closeForm(); $('#add-bucket').focus() })

function formValues () {
  const values = {}
  for (const name of FIELDS) {
    const el = form.elements[name]
    values[name] = el.type === 'checkbox' ? String(el.checked) : el.value.trim()
  }
  return values
}

function showFieldError (field, message) {
  const el = FIELDS.includes(field) ? form.elements[field] : null
  if (el === null) return false
  const err = $(`#err-${field}`)
  err.textContent = message
  el.setAttribute('aria-invalid', 'true')
  el.setAttribute('aria-describedby', err.id)
  el.focus()
  return true
}

form.addEventListener('submit', async (ev) => {
  ev.preventDefault()
  clearFieldErrors()
  $('#alert').textContent = ''
  const values = formValues()
  let body
  if (editing === null) {
    body = { op: 'add', ...values } // add replaces the whole entry
  } else {
    // modify changes only the fields sent: send what differs from the current view; a blank
    // secret means "unchanged" unless its "clear secret" box is ticked.
    body = { op: 'modify', bucketname: editing.bucketname }
    for (const name of FIELDS) {
      if (name === 'bucketname') continue
      if (SECRETS.includes(name)) {
        if (values[name] !== '') body[name] = values[name]
        else if (form.elements[`clear-${name}`].checked) body[name] = ''
      } else if (values[name] !== String(editing[name] ?? '')) {
        body[name] = values[name]
      }
    }
  }
  for (const name of SECRETS) form.elements[name].value = '' // never keep a secret in the page
  try {
    const res = await api('/add-mod-del-bucket', { method: 'POST', form: body })
    closeForm()
    await loadBuckets()
    say(`Bucket ${res.bucket?.bucketname ?? body.bucketname} ${body.op === 'add' ? 'saved' : 'updated'}.`)
  } catch (err) {
    if (err instanceof ApiError && err.status === 400 && showFieldError(err.body?.field, err.message)) return
    alertError(err)
  }
})

// ---- start ----

if (sessionStorage.getItem(TOKEN_KEY) === null) showLogin()
else {
  enter().catch((err) => rejected(err)
    ? logout('The token was rejected; log in again.')
    : showLogin(`Cannot reach the API: ${err.message}`))
}
