// s3link dashboard: plain ES module, no build. Talks to the control API on the same origin with the
// admin token as a bearer token (kept in sessionStorage only): the bucket API, and the FSx wire
// protocol (POST / with X-Amz-Target) for data repository associations and tasks. Secrets are write-only: the
// API never returns them and this page never displays them. Text from the API goes in as
// textContent, never as HTML.
const TOKEN_KEY = 's3link.token'
const FIELDS = ['bucketname', 'cloud', 'endpoint', 'region', 'accessKeyId', 'secretAccessKey', 'accessRole',
  'accessRoleExt', 'sharedSecret', 'pathStyle', 'checksums', 'sse', 'kmsKeyId']
const SECRETS = ['secretAccessKey', 'sharedSecret']
const $ = (sel) => document.querySelector(sel)
const form = $('#bucket-form')
let buckets = []
let editing = null // the bucket view being edited, or null when adding

const rejected = (err) => err instanceof ApiError && (err.status === 401 || err.status === 403)

// The bucket API answers { error, message }, the FSx protocol { __type, Message }.
class ApiError extends Error {
  constructor (status, body) {
    super(body?.message ?? body?.Message ?? `HTTP ${status}`)
    this.status = status
    this.body = body
    this.type = body?.error ?? body?.__type ?? 'Error'
  }
}

async function send (path, method, headers, body) {
  headers = { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) ?? ''}`, Accept: 'application/json', ...headers }
  const res = await fetch(path, { method, headers, body, cache: 'no-store' })
  const data = await res.json().catch(() => null)
  if (!res.ok) throw new ApiError(res.status, data)
  return data
}

function api (path, { method = 'GET', form: fields } = {}) {
  if (fields === undefined) return send(path, method, {})
  return send(path, method, { 'Content-Type': 'application/x-www-form-urlencoded' }, new URLSearchParams(fields).toString())
}

/** One FSx operation, as `aws fsx` would send it. */
function fsx (operation, input = {}) {
  return send('/', 'POST', {
    'Content-Type': 'application/x-amz-json-1.1',
    'X-Amz-Target': `AWSSimbaAPIService_v20180301.${operation}`
  }, JSON.stringify(input))
}

const errorText = (err) => err instanceof ApiError
  ? `${err.type} (HTTP ${err.status}): ${err.message}`
  : `Request failed: ${err.message}`

/** Shows err in `box` (the page's alert by default); a refused token logs out instead. */
function alertError (err, box = $('#alert')) {
  if (rejected(err)) return logout('The token was rejected; log in again.')
  box.textContent = errorText(err)
}

function say (text) {
  $('#alert').textContent = ''
  $('#dra-alert').textContent = ''
  $('#task-alert').textContent = ''
  $('#status').textContent = text
}

function el (tag, className = '', text = '') {
  const e = document.createElement(tag)
  if (className !== '') e.className = className
  e.textContent = text
  return e
}

// Both sections are on one page: the nav marks the one last jumped to.
function markSection () {
  const hash = location.hash === '' ? '#buckets' : location.hash
  for (const a of document.querySelectorAll('nav a')) {
    if (a.getAttribute('href') === hash) a.setAttribute('aria-current', 'location')
    else a.removeAttribute('aria-current')
  }
}
window.addEventListener('hashchange', markSection)

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
  resetDras()
  resetTasks()
  showLogin(message)
}

async function enter () {
  const status = await api('/api/status')
  $('#fs-info').textContent = `${status.name} · ${status.id} · mounted at ${status.mountpoint}`
  $('#login').hidden = true
  $('#app').hidden = false
  $('#logout').hidden = false
  await Promise.all([loadBuckets(), loadDras(), loadTasks()])
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

// ---- data repository associations ----

const draForm = $('#dra-form')
const draDialog = $('#dra-delete')
const LIFECYCLES = ['CREATING', 'AVAILABLE', 'MISCONFIGURED', 'UPDATING', 'DELETING', 'FAILED']
// The daemon settles these by itself: the list polls until none is left.
const TRANSITIONAL = ['CREATING', 'UPDATING', 'DELETING']
const POLL_MS = 2000
let draEditing = null // the association whose events are being edited, or null when creating
let draDeleting = null // the association the delete dialog asks about
let fileSystemId = null
let pollTimer
let loads = 0 // only the latest listing is drawn: an older one may answer last

function resetDras () {
  clearTimeout(pollTimer)
  loads++
  draDeleting = null
  $('#dra-table tbody').replaceChildren()
  $('#dra-alert').textContent = ''
  closeDraForm()
  if (draDialog.open) draDialog.close()
}

async function describeAll () {
  const all = []
  let token
  do {
    const page = await fsx('DescribeDataRepositoryAssociations', { MaxResults: 25, ...(token !== undefined ? { NextToken: token } : {}) })
    all.push(...page.Associations)
    token = page.NextToken
  } while (token !== undefined)
  return all
}

async function loadDras () {
  clearTimeout(pollTimer)
  const load = ++loads
  const list = await describeAll()
  if (load !== loads) return
  $('#dra-table tbody').replaceChildren(...list.map(draRow))
  $('#no-dras').hidden = list.length > 0
  if (list.some((a) => TRANSITIONAL.includes(a.Lifecycle))) pollTimer = setTimeout(refreshDras, POLL_MS)
}

// A failed refresh stops polling and says why; the Refresh button starts again.
const refreshDras = () => loadDras().catch((err) => alertError(err, $('#dra-alert')))

const eventsText = (policy) => policy?.Events?.length > 0 ? policy.Events.join(', ') : 'off'

function draRow (a) {
  const tr = document.createElement('tr')
  tr.dataset.association = a.AssociationId
  const id = el('th', 'id', a.AssociationId)
  id.scope = 'row'
  const paths = el('td', 'paths')
  paths.append(el('span', 'path', a.FileSystemPath), el('span', 'path', `↔ ${a.DataRepositoryPath}`))
  const lifecycle = el('td', 'lifecycle')
  const kind = LIFECYCLES.includes(a.Lifecycle) ? a.Lifecycle.toLowerCase() : 'unknown'
  lifecycle.append(el('span', `badge lc-${kind}`, a.Lifecycle))
  if (a.FailureDetails?.Message) lifecycle.append(el('span', 'failure', a.FailureDetails.Message))
  const actions = el('td', 'actions')
  // The API refuses updates of a DELETING or FAILED association (delete and create it again).
  const settled = a.Lifecycle !== 'DELETING' && a.Lifecycle !== 'FAILED'
  for (const [label, fn, enabled] of [['Edit events', openDraForm, settled], ['Re-check', recheck, settled], ['Delete', askDelete, a.Lifecycle !== 'DELETING']]) {
    const button = el('button', '', label)
    button.type = 'button'
    button.disabled = !enabled
    button.setAttribute('aria-label', `${label} ${a.AssociationId}`)
    button.addEventListener('click', () => fn(a))
    actions.append(button)
  }
  tr.append(id, paths, lifecycle, el('td', 'event-list', eventsText(a.S3?.AutoImportPolicy)),
    el('td', 'event-list', eventsText(a.S3?.AutoExportPolicy)), actions)
  return tr
}

// An update naming only the association is how FSx re-checks a MISCONFIGURED one at once.
async function recheck (a) {
  try {
    await fsx('UpdateDataRepositoryAssociation', { AssociationId: a.AssociationId })
    say(`Association ${a.AssociationId} is being checked again.`)
  } catch (err) { return alertError(err, $('#dra-alert')) }
  await refreshDras()
}

function askDelete (a) {
  draDeleting = a
  draDialog.querySelector('form').reset()
  $('#dra-delete-text').textContent = `Delete ${a.AssociationId}, which links ${a.FileSystemPath} to ${a.DataRepositoryPath}?`
  draDialog.returnValue = ''
  draDialog.showModal()
}

draDialog.addEventListener('close', async () => {
  const a = draDeleting
  draDeleting = null
  if (a === null || draDialog.returnValue !== 'delete') return
  const deleteData = draDialog.querySelector('[name="deleteData"]').checked
  try {
    await fsx('DeleteDataRepositoryAssociation', { AssociationId: a.AssociationId, DeleteDataInFileSystem: deleteData })
    if (draEditing?.AssociationId === a.AssociationId) closeDraForm()
    say(`Association ${a.AssociationId} is being deleted${deleteData ? ', with its data' : ''}.`)
  } catch (err) { return alertError(err, $('#dra-alert')) }
  await refreshDras()
})

// ---- create / edit events form ----

const PATHS = ['FileSystemPath', 'DataRepositoryPath']

function clearDraErrors () {
  $('#dra-form-error').textContent = ''
  for (const name of PATHS) {
    draForm.elements[name].removeAttribute('aria-invalid')
    draForm.elements[name].removeAttribute('aria-describedby')
  }
}

function openDraForm (a) {
  draEditing = a
  draForm.reset()
  clearDraErrors()
  draForm.classList.toggle('editing', a !== null)
  $('#dra-form-title').textContent = a === null ? 'New association' : `Edit events of ${a.AssociationId}`
  $('#dra-save').textContent = a === null ? 'Create' : 'Update'
  for (const name of PATHS) {
    draForm.elements[name].readOnly = a !== null
    draForm.elements[name].value = a?.[name] ?? ''
  }
  for (const [name, policy] of [['import', a?.S3?.AutoImportPolicy], ['export', a?.S3?.AutoExportPolicy]]) {
    for (const box of draForm.elements[name]) box.checked = policy?.Events?.includes(box.value) === true
  }
  draForm.hidden = false
  const first = a === null ? draForm.elements.FileSystemPath : draForm.elements.import[0]
  first.focus()
}

function closeDraForm () {
  draEditing = null
  draForm.reset()
  clearDraErrors()
  draForm.hidden = true
}

$('#add-dra').addEventListener('click', () => openDraForm(null))
$('#refresh-dras').addEventListener('click', () => { $('#dra-alert').textContent = ''; void refreshDras() })
$('#dra-cancel').addEventListener('click', () => { closeDraForm(); $('#add-dra').focus() })

const checkedEvents = (name) => [...draForm.elements[name]].filter((box) => box.checked).map((box) => box.value)

// The daemon serves one file system: its id never changes, so it is asked for once.
async function fsId () {
  fileSystemId ??= (await fsx('DescribeFileSystems')).FileSystems[0].FileSystemId
  return fileSystemId
}

async function createDra () {
  const text = (name) => draForm.elements[name].value.trim() || undefined // absent: the API names what is missing
  const policy = (events) => events.length > 0 ? { Events: events } : undefined
  const { Association } = await fsx('CreateDataRepositoryAssociation', {
    FileSystemId: await fsId(),
    FileSystemPath: text('FileSystemPath'),
    DataRepositoryPath: text('DataRepositoryPath'),
    BatchImportMetaDataOnCreate: draForm.elements.BatchImportMetaDataOnCreate.checked,
    S3: { AutoImportPolicy: policy(checkedEvents('import')), AutoExportPolicy: policy(checkedEvents('export')) }
  })
  return `Association ${Association.AssociationId} created: ${Association.FileSystemPath} ↔ ${Association.DataRepositoryPath}.`
}

async function updateDra (a) {
  // Both policies are sent: an update leaves a policy it does not name as it was, and an empty
  // list is how a direction is turned off.
  await fsx('UpdateDataRepositoryAssociation', {
    AssociationId: a.AssociationId,
    S3: { AutoImportPolicy: { Events: checkedEvents('import') }, AutoExportPolicy: { Events: checkedEvents('export') } }
  })
  return `Association ${a.AssociationId} updated.`
}

draForm.addEventListener('submit', async (ev) => {
  ev.preventDefault()
  clearDraErrors()
  let done
  try {
    done = draEditing === null ? await createDra() : await updateDra(draEditing)
  } catch (err) {
    alertError(err, $('#dra-form-error'))
    // FSx messages begin with the parameter at fault: point that field at the message.
    const field = PATHS.find((name) => err.message?.startsWith(name) && !draForm.elements[name].readOnly)
    if (field !== undefined) {
      draForm.elements[field].setAttribute('aria-invalid', 'true')
      draForm.elements[field].setAttribute('aria-describedby', 'dra-form-error')
    }
    return
  }
  closeDraForm()
  say(done)
  await refreshDras()
})

// ---- data repository tasks ----

const TASK_LIFECYCLES = ['PENDING', 'EXECUTING', 'SUCCEEDED', 'FAILED', 'CANCELING', 'CANCELED']
const TASK_RUNNING = ['PENDING', 'EXECUTING', 'CANCELING'] // polled until none is left
const CANCELABLE = ['PENDING', 'EXECUTING']
let taskTimer
let taskLoads = 0 // as for associations: only the latest listing is drawn

function resetTasks () {
  clearTimeout(taskTimer)
  taskLoads++
  $('#task-table tbody').replaceChildren()
  $('#task-alert').textContent = ''
}

async function loadTasks () {
  clearTimeout(taskTimer)
  const load = ++taskLoads
  const list = []
  let token
  do {
    const page = await fsx('DescribeDataRepositoryTasks', { MaxResults: 50, ...(token !== undefined ? { NextToken: token } : {}) })
    list.push(...page.DataRepositoryTasks)
    token = page.NextToken
  } while (token !== undefined)
  if (load !== taskLoads) return
  // The API lists newest first already: the order is kept.
  $('#task-table tbody').replaceChildren(...list.map(taskRow))
  $('#no-tasks').hidden = list.length > 0
  if (list.some((x) => TASK_RUNNING.includes(x.Lifecycle))) taskTimer = setTimeout(refreshTasks, POLL_MS)
}

const refreshTasks = () => loadTasks().catch((err) => alertError(err, $('#task-alert')))

// Times are epoch seconds on the wire.
const localTime = (seconds) => typeof seconds === 'number' ? new Date(seconds * 1000).toLocaleString() : '—'

function progressCell (status) {
  const td = el('td', 'progress')
  if (status === undefined) return td
  const { TotalCount: total = 0, SucceededCount: ok = 0, FailedCount: failed = 0 } = status
  td.append(el('span', 'counts', `${ok} succeeded, ${failed} failed of ${total}`))
  if (total > 0) {
    const bar = el('progress')
    bar.max = total
    bar.value = ok + failed
    bar.setAttribute('aria-label', `${ok + failed} of ${total} done`)
    td.append(bar)
  }
  return td
}

function taskRow (x) {
  const tr = document.createElement('tr')
  tr.dataset.task = x.TaskId
  const id = el('th', 'id', x.TaskId)
  id.scope = 'row'
  const lifecycle = el('td', 'lifecycle')
  const kind = TASK_LIFECYCLES.includes(x.Lifecycle) ? x.Lifecycle.toLowerCase() : 'unknown'
  lifecycle.append(el('span', `badge lc-${kind}`, x.Lifecycle))
  if (x.FailureDetails?.Message) lifecycle.append(el('span', 'failure', x.FailureDetails.Message))
  const paths = el('td', 'paths')
  if (x.Paths?.length > 0) paths.append(...x.Paths.map((p) => el('span', 'path', p)))
  else paths.append(el('span', 'hint', 'all associations'))
  const actions = el('td', 'actions')
  if (CANCELABLE.includes(x.Lifecycle)) {
    const button = el('button', '', 'Cancel')
    button.type = 'button'
    button.setAttribute('aria-label', `Cancel ${x.TaskId}`)
    button.addEventListener('click', () => cancelTask(x))
    actions.append(button)
  }
  tr.append(id, el('td', 'type', x.Type), lifecycle, paths, progressCell(x.Status),
    el('td', 'time', localTime(x.CreationTime)), el('td', 'time', localTime(x.EndTime)), actions)
  return tr
}

async function cancelTask (x) {
  try {
    const r = await fsx('CancelDataRepositoryTask', { TaskId: x.TaskId })
    say(`Task ${r.TaskId} is ${r.Lifecycle}.`)
  } catch (err) { return alertError(err, $('#task-alert')) }
  await refreshTasks()
}

$('#import-task').addEventListener('click', async () => {
  try {
    const { DataRepositoryTask: x } = await fsx('CreateDataRepositoryTask', {
      Type: 'IMPORT_METADATA_FROM_REPOSITORY', FileSystemId: await fsId(), Report: { Enabled: false }
    })
    say(`Import task ${x.TaskId} started.`)
  } catch (err) { return alertError(err, $('#task-alert')) }
  await refreshTasks()
})
$('#refresh-tasks').addEventListener('click', () => { $('#task-alert').textContent = ''; void refreshTasks() })

// ---- start ----

markSection()
if (sessionStorage.getItem(TOKEN_KEY) === null) showLogin()
else {
  enter().catch((err) => rejected(err)
    ? logout('The token was rejected; log in again.')
    : showLogin(`Cannot reach the API: ${err.message}`))
}
