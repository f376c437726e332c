// The Updates page of inlet: integrations and tasks with their status, a
// page at a time, searchable by name and status, kept current from
// GET /api/updates/stream (or by polling GET /api/updates when the stream is
// unavailable), with "Update now", the sync history and the schedule editor.
//
// Plain ES2020, no framework and no build step: the host embeds this file.
// Names and messages come from users and plugins, so API data is only ever
// written with textContent or attributes, never parsed as HTML.
'use strict';

const TOKEN_KEY = 'inlet.admin-token';
const POLL_MS = 5000;
const STREAM_RETRY_MS = 30000;
// How long a clicked "Update now" shows "Processing" before the server
// confirms the run. Longer than a polling period, so polling mode does not
// flicker either.
const CLICK_GRACE_MS = 10000;
const HISTORY_REFRESH_MS = 3000;
// How often an open log of a run in flight asks for new lines (the host
// writes them every 250 ms).
const LOG_REFRESH_MS = 1000;
const ROW_MESSAGE_MS = 60000;
const FILTERS = ['all', 'integrations', 'tasks'];
const PAGE_SIZE = 50;
// Typing pauses this long before the search is sent.
const SEARCH_DELAY_MS = 300;
// The interval presets of host/src/schedule.rs (INTERVAL_PRESETS), which the
// select in updates.html offers.
const INTERVAL_PRESETS = { '5m': 300, '15m': 900, '30m': 1800, '1h': 3600, '6h': 21600, daily: 86400, weekly: 604800 };
const DEFAULT_INTERVAL = '15m';

const state = {
  token: null,
  filter: 'all',
  search: '', // part of a name
  status: '', // a status value of the API, or '' for any
  cursor: null, // where the page shown starts (null: the first page)
  previous: [], // where the pages before it started
  nextCursor: null, // where the next page starts; null on the last
  searchTimer: null,
  rows: new Map(), // id -> the last row the server sent
  labels: new Map(), // id -> status label last seen, to announce changes
  clicked: new Map(), // id -> { at, lastSuccess }: "Update now" not yet confirmed
  messageTimers: new Map(), // id -> timer clearing the row's message
  generation: 0, // bumped on filter change and sign-out; older replies are dropped
  sequence: 0, // orders snapshots, so an old poll cannot overwrite a newer event
  applied: 0, // sequence of the snapshot on screen
  stream: null, // AbortController of the open stream
  pollTimer: null,
  retryTimer: null,
  history: null, // { id, opener, cursor, loading, timer, inFlight }
  schedule: null, // { id, name, opener }
  plugins: new Map(), // id -> plugin, for the Connections dialog
  connectionsCursor: null, // where the next page of connections starts
  connectionsGeneration: 0, // bumped by each load; older replies are dropped
  previewTimer: null,
  records: null, // { id, what, cursor, generation } while the Records dialog is open
  recordsTimer: null,
};

const $ = (selector) => document.querySelector(selector);

// ---------------------------------------------------------------- API calls

class ApiError extends Error {
  constructor(status, body) {
    const detail = (body && body.error) || {};
    super(detail.message || `The server answered ${status}.`);
    this.name = 'ApiError';
    this.status = status;
    this.code = detail.code || null;
    this.field = detail.field || null;
  }
}

class Unreachable extends Error {
  constructor() {
    super('The inlet server could not be reached.');
    this.name = 'Unreachable';
  }
}

function authHeaders(extra) {
  return Object.assign({ Authorization: `Bearer ${state.token}` }, extra);
}

async function readJson(response) {
  try {
    return await response.json();
  } catch (_) {
    return null;
  }
}

// Every /api call: sends the token, turns error replies into ApiError (with
// the server's message and field) and signs out on 401.
async function api(path, { method = 'GET', body } = {}) {
  const headers = authHeaders({ Accept: 'application/json' });
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (_) {
    throw new Unreachable();
  }
  if (response.status === 401) {
    signOut('The server did not accept the token (it may have been revoked). Sign in again.');
  }
  if (!response.ok) throw new ApiError(response.status, await readJson(response));
  return response.status === 204 ? null : readJson(response);
}

// A 401 has already signed the page out; nothing more to say about it.
function alreadyHandled(error) {
  return error instanceof ApiError && error.status === 401;
}

function updatesQuery() {
  const query = new URLSearchParams({ filter: state.filter, limit: String(PAGE_SIZE) });
  if (state.search) query.set('name', state.search);
  if (state.status) query.set('status', state.status);
  if (state.cursor !== null) query.set('cursor', String(state.cursor));
  return query.toString();
}

// ---------------------------------------------------------- sign in and out

function readStoredToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch (_) {
    return null; // storage disabled: the token then lives in memory only
  }
}

function storeToken(token) {
  try {
    if (token === null) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, token);
  } catch (_) {
    // Storage disabled; the page still works until it is reloaded.
  }
}

function onSignIn(event) {
  event.preventDefault();
  const input = $('#token');
  const token = input.value.trim();
  // A header value must be printable ASCII; fetch would otherwise fail in a
  // way that looks like the server being down.
  if (!token || /[^\x21-\x7e]/.test(token)) {
    input.setAttribute('aria-invalid', 'true');
    showSignInMessage(token ? 'A token has no spaces or special characters; paste it again.' : 'Enter the admin token.');
    input.focus();
    return;
  }
  input.removeAttribute('aria-invalid');
  input.value = '';
  state.token = token;
  storeToken(token);
  showApp();
  $('#updates-heading').focus();
}

function showSignInMessage(text) {
  $('#sign-in-message').textContent = text;
}

function showSignIn(message) {
  $('#app').hidden = true;
  $('#sign-out').hidden = true;
  $('#open-tokens').hidden = true;
  $('#open-failed').hidden = true;
  $('#open-plugins').hidden = true;
  $('#open-connections').hidden = true;
  $('#open-wizard').hidden = true;
  $('#sign-in').hidden = false;
  showSignInMessage(message || '');
  $('#token').focus();
}

function showApp() {
  $('#sign-in').hidden = true;
  $('#app').hidden = false;
  $('#sign-out').hidden = false;
  $('#open-tokens').hidden = false;
  $('#open-failed').hidden = false;
  $('#open-plugins').hidden = false;
  $('#open-connections').hidden = false;
  $('#open-wizard').hidden = false;
  connect();
  showViewOfLocation();
}

// ------------------------------------------------------------------ views

// The console's views over the Updates list, each at its own address: the
// address opens its view (also when typed or bookmarked), opening a view
// puts its address in the history, and Back closes it again. The server
// serves this document at each of them.
const VIEWS = {
  '/integrations/new': { dialog: '#wizard-dialog', open: () => openWizard() },
  '/connections': { dialog: '#connections-dialog', open: () => openConnections() },
  '/plugins': { dialog: '#plugins-dialog', open: () => openPlugins() },
  '/jobs/failed': { dialog: '#failed-dialog', open: () => openFailed() },
  '/tokens': { dialog: '#tokens-dialog', open: () => openTokens() },
};

function viewOfDialog(dialog) {
  return Object.keys(VIEWS).find((path) => VIEWS[path].dialog === `#${dialog.id}`);
}

// Open the view at `path` from a button or link: its address first, so
// that Back returns to the list.
function goToView(path) {
  if (location.pathname !== path) history.pushState({ view: path }, '', path + location.search);
  showViewOfLocation();
}

// Make the open view the one the address names.
function showViewOfLocation() {
  const wanted = VIEWS[location.pathname];
  for (const view of Object.values(VIEWS)) {
    if (view !== wanted && $(view.dialog).open) $(view.dialog).close();
  }
  for (const link of document.querySelectorAll('nav.sidebar a')) {
    const here = link.getAttribute('href') === (wanted ? location.pathname : '/updates');
    if (here) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (wanted && state.token && !$(wanted.dialog).open) {
    Promise.resolve(wanted.open()).catch((error) => alreadyHandled(error) || showBanner(error.message));
  }
}

// A view closed (its button, Escape): the address goes back to the list's.
function onViewClosed(event) {
  const path = viewOfDialog(event.target);
  if (path && location.pathname === path) {
    history.pushState({ view: null }, '', `/updates${location.search}`);
    showViewOfLocation();
  }
}

// Forget the token and everything shown with it.
function signOut(message) {
  if (state.token === null) return;
  state.token = null;
  storeToken(null);
  disconnect();
  closeHistory({ restoreFocus: false });
  closeSchedule();
  closeTokens();
  closeFailed();
  closePlugins();
  closeConnections();
  closeWizard();
  closeRecords();
  clearRows();
  state.cursor = null;
  state.previous = [];
  hideBanner();
  showSignIn(message);
}

// ------------------------------------------------- stream, polling, refresh

function connect() {
  disconnect();
  // Rows already shown stay until the new ones arrive.
  $('#loading').hidden = state.rows.size > 0;
  setLive('connecting');
  openStream();
}

function disconnect() {
  state.generation += 1;
  if (state.stream) state.stream.abort();
  state.stream = null;
  stopPolling();
  clearTimeout(state.retryTimer);
  state.retryTimer = null;
}

// Reads the event stream with fetch rather than EventSource, because
// EventSource cannot send the Authorization header.
async function openStream() {
  clearTimeout(state.retryTimer);
  state.retryTimer = null;
  if (state.stream) state.stream.abort();
  const controller = new AbortController();
  const generation = state.generation;
  state.stream = controller;
  try {
    const response = await fetch(`/api/updates/stream?${updatesQuery()}`, {
      headers: authHeaders({ Accept: 'text/event-stream' }),
      signal: controller.signal,
      cache: 'no-store',
    });
    if (response.status === 401) {
      signOut('The server did not accept the token. Sign in again.');
      return;
    }
    if (!response.ok || !response.body) throw new Error(`the stream answered ${response.status}`);
    // A `page` first, then the `changes` to it.
    await readEvents(response.body, (event) => {
      if (generation !== state.generation) return;
      if (event.type === 'page') applyPage(JSON.parse(event.data), nextSequence());
      else if (event.type === 'changes') applyChanges(JSON.parse(event.data), nextSequence());
      else return;
      stopPolling();
      setLive('live');
    });
  } catch (error) {
    if (controller.signal.aborted) return; // closed on purpose
    console.warn('inlet: the update stream failed:', error);
  }
  if (controller.signal.aborted || generation !== state.generation) return;
  state.stream = null;
  fallBackToPolling();
}

// Parses text/event-stream framing: events end with a blank line; `event:`
// names one, `data:` lines carry it, and lines starting with ':' are
// comments (the server's keep-alives).
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let carriageReturn = false;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    // Line ends may be \r\n, \n or \r; a \r\n split across chunks must
    // not count as two line ends.
    let text = (carriageReturn ? '\r' : '') + value;
    carriageReturn = text.endsWith('\r');
    if (carriageReturn) text = text.slice(0, -1);
    buffer += text.replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const event = parseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (event) onEvent(event);
    }
  }
}

function parseEvent(block) {
  let type = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') type = value;
    else if (field === 'data') data.push(value);
  }
  return data.length ? { type, data: data.join('\n') } : null;
}

function fallBackToPolling() {
  setLive('polling');
  startPolling();
  state.retryTimer = setTimeout(openStream, STREAM_RETRY_MS);
}

function startPolling() {
  if (state.pollTimer !== null) return;
  refreshOnce();
  state.pollTimer = setInterval(refreshOnce, POLL_MS);
}

function stopPolling() {
  clearInterval(state.pollTimer);
  state.pollTimer = null;
}

function nextSequence() {
  state.sequence += 1;
  return state.sequence;
}

// One GET /api/updates: polling, the Refresh button, and after changes.
async function refreshOnce() {
  // The stream's changes are relative to what it sent: a reply from
  // elsewhere would put rows it does not know of under them.
  if (state.stream) {
    connect();
    return;
  }
  const generation = state.generation;
  const sequence = nextSequence();
  try {
    const page = await api(`/api/updates?${updatesQuery()}`);
    if (generation === state.generation) applyPage(page, sequence);
  } catch (error) {
    if (alreadyHandled(error) || generation !== state.generation) return;
    if (error instanceof Unreachable) {
      showBanner(`Cannot reach the inlet server. Trying again every ${POLL_MS / 1000} s.`);
    } else {
      showBanner(`The updates could not be loaded: ${error.message}`);
    }
  }
}

function setLive(mode) {
  const live = $('#live');
  const text = { connecting: 'Connecting…', live: 'Live', polling: `Polling every ${POLL_MS / 1000} s` }[mode];
  live.dataset.state = mode;
  if (live.textContent !== text) live.textContent = text;
}

function showBanner(text) {
  const banner = $('#banner');
  banner.hidden = false;
  if (banner.textContent !== text) banner.textContent = text;
}

function hideBanner() {
  const banner = $('#banner');
  banner.hidden = true;
  banner.textContent = '';
}

// ----------------------------------------------------------------- the rows

// A whole page: from the stream's first event, a poll or a refresh.
function applyPage(page, sequence) {
  if (sequence < state.applied) return; // an older reply that arrived late
  state.applied = sequence;
  hideBanner();
  $('#loading').hidden = true;
  announceChanges(page.rows);
  state.rows = new Map(page.rows.map((row) => [row.id, row]));
  state.nextCursor = page.next_cursor;
  renderRows(page.rows);
  showEmptyState(page.rows.length === 0);
  showPager();
  followHistory();
}

// What changed on the page since the stream's last event.
function applyChanges(changes, sequence) {
  const rows = new Map(state.rows);
  for (const id of changes.removed) rows.delete(id);
  for (const row of changes.changed) rows.set(row.id, row);
  const sorted = Array.from(rows.values()).sort((a, b) => a.id - b.id);
  applyPage({ rows: sorted, next_cursor: changes.next_cursor }, sequence);
}

function clearRows() {
  state.rows = new Map();
  state.nextCursor = null;
  $('#pager').hidden = true;
  state.labels = new Map();
  state.clicked = new Map();
  $('#updates-body').replaceChildren();
  $('#updates-table').hidden = true;
  $('#empty').hidden = true;
}

function showEmptyState(empty) {
  $('#updates-table').hidden = empty;
  const message = $('#empty');
  message.hidden = !empty;
  if (!empty) return;
  const what = { all: 'integrations or tasks', integrations: 'integrations', tasks: 'tasks' }[state.filter];
  if (state.search || state.status) {
    message.textContent = `No ${what} match the search.`;
  } else if (state.cursor !== null) {
    message.textContent = `There are no more ${what}.`;
  } else {
    message.textContent = `There are no ${what} yet. Add one with “inlet integrations add <plugin> <instance type> --group <id>”.`;
  }
}

function showPager() {
  const first = state.cursor === null;
  const last = state.nextCursor === null;
  $('#pager').hidden = first && last;
  $('#page-previous').disabled = first;
  $('#page-next').disabled = last;
  setText($('#page-position'), `Page ${state.previous.length + 1}`);
}

// Reads the page starting at `cursor`. The pager waits for its rows: a
// click before then would page from the old page's cursor.
function loadPage(cursor, previous) {
  state.cursor = cursor;
  state.previous = previous;
  state.nextCursor = null;
  $('#page-previous').disabled = true;
  $('#page-next').disabled = true;
  connect();
}

function showPage(cursor, previous) {
  closeHistory({ restoreFocus: false });
  loadPage(cursor, previous);
  $('#updates-heading').focus();
}

function onNextPage() {
  if (state.nextCursor === null) return;
  showPage(state.nextCursor, [...state.previous, state.cursor]);
}

function onPreviousPage() {
  if (!state.previous.length) return;
  showPage(state.previous[state.previous.length - 1], state.previous.slice(0, -1));
}

// Updates rows in place (creating, moving and removing only what changed)
// so that focus, selection and an open drawer survive every update.
function renderRows(rows) {
  const body = $('#updates-body');
  const existing = new Map(Array.from(body.rows, (tr) => [tr.dataset.id, tr]));
  let previous = null;
  for (const row of rows) {
    const key = String(row.id);
    const tr = existing.get(key) || createRow(row.id);
    existing.delete(key);
    updateRow(tr, row);
    const wanted = previous ? previous.nextElementSibling : body.firstElementChild;
    if (tr !== wanted) body.insertBefore(tr, wanted);
    previous = tr;
  }
  for (const tr of existing.values()) {
    if (tr.contains(document.activeElement)) $('#updates-heading').focus();
    tr.remove();
  }
}

function rerenderRow(id) {
  const tr = rowElement(id);
  const row = state.rows.get(id);
  if (tr && row) updateRow(tr, row);
}

function rowElement(id) {
  return $('#updates-body').querySelector(`tr[data-id="${Number(id)}"]`);
}

function element(tag, attributes = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// The row's skeleton; updateRow fills it. The explicit roles keep the table
// semantics when the narrow layout displays rows as blocks.
function createRow(id) {
  const tr = element('tr', { 'data-id': String(id), role: 'row' });

  const name = element('th', { scope: 'row', role: 'rowheader', class: 'name' });
  name.append(
    element('span', { class: 'name-text', id: `row-${id}-name` }),
    element('span', { class: 'meta' }),
    element('span', { class: 'kind' }),
  );

  const status = element('td', { class: 'status', role: 'cell', 'data-label': 'Status' });
  status.append(
    element('span', { class: 'badge' }),
    element('span', { class: 'failures' }),
    element('span', { class: 'last-error' }),
  );

  const actions = element('td', { class: 'actions', role: 'cell', 'data-label': 'Actions' });
  const buttons = element('div', { class: 'action-buttons' });
  // Each button's description names its row: a screen reader's list of
  // buttons would otherwise hold many identical "Update now"s.
  const describedBy = `row-${id}-name`;
  buttons.append(
    element('button', { type: 'button', 'data-action': 'update-now', 'aria-describedby': describedBy }, 'Update now'),
    element('button', { type: 'button', 'data-action': 'history', 'aria-describedby': describedBy }, 'History'),
    element('button', { type: 'button', 'data-action': 'schedule', 'aria-describedby': describedBy }, 'Schedule'),
  );
  actions.append(buttons, element('p', { class: 'row-message', role: 'status' }));

  tr.append(
    name,
    status,
    element('td', { class: 'last-success', role: 'cell', 'data-label': 'Last success' }),
    element('td', { class: 'next-run', role: 'cell', 'data-label': 'Next run' }),
    element('td', { class: 'schedule', role: 'cell', 'data-label': 'Schedule' }),
    actions,
  );
  return tr;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function updateRow(tr, row) {
  const name = tr.querySelector('.name');
  setText(name.querySelector('.name-text'), row.name);
  setText(name.querySelector('.meta'), `${row.plugin_id} · ${row.instance_type}`);
  const kind = name.querySelector('.kind');
  setText(kind, row.kind);
  kind.className = `kind kind-${row.kind}`;
  tr.dataset.status = row.status.status;

  updateStatusCell(tr.querySelector('td.status'), row);
  updateTimeCell(tr.querySelector('td.last-success'), row.last_success_at, '—');
  const manual = row.schedule_summary === 'manual only';
  updateNextRunCell(tr.querySelector('td.next-run'), row, manual);
  updateScheduleCell(tr.querySelector('td.schedule'), row);
  updateUpdateButton(tr.querySelector('button[data-action="update-now"]'), row);
}

function updateStatusCell(cell, row) {
  const badge = cell.querySelector('.badge');
  setText(badge, row.status_label);
  // The class only adds colour; the text says the same.
  const badgeClass = `badge status-${row.status.status}`;
  if (badge.className !== badgeClass) badge.className = badgeClass;

  const failures = cell.querySelector('.failures');
  const count = row.consecutive_failures;
  setText(failures, count > 0 ? `${count} failed run${count === 1 ? '' : 's'} in a row` : '');
  failures.hidden = count <= 0;

  // Why the last attempt failed, where the operator looks; the history
  // drawer has the whole run.
  const lastError = cell.querySelector('.last-error');
  setText(lastError, row.last_error ? `Error: ${row.last_error}` : '');
  lastError.hidden = !row.last_error;

  updateProgress(cell, row);
}

function updateProgress(cell, row) {
  const run = row.run;
  let wrapper = cell.querySelector('.progress');
  if (!run || run.progress_total === null || run.progress_total === undefined || run.progress_total <= 0) {
    if (wrapper) wrapper.remove();
    return;
  }
  if (!wrapper) {
    wrapper = element('span', { class: 'progress' });
    wrapper.append(element('progress', { class: 'run-progress' }), element('span', { class: 'progress-text' }));
    cell.append(wrapper);
  }
  const done = Math.min(run.progress_done || 0, run.progress_total);
  const progress = wrapper.querySelector('progress');
  progress.max = run.progress_total;
  progress.value = done;
  const text = `${formatNumber(done)} of ${formatNumber(run.progress_total)}`;
  progress.setAttribute('aria-label', `Progress of ${row.name}`);
  progress.setAttribute('aria-valuetext', text);
  setText(wrapper.querySelector('.progress-text'), text);
}

// A time as "Today 14:05" (or a date) in the browser's locale, with the
// exact instant in a <time> element; `none` when there is no time.
function updateTimeCell(cell, millis, none) {
  if (millis === null || millis === undefined) {
    if (cell.firstElementChild || cell.textContent !== none) cell.textContent = none;
    return;
  }
  let time = cell.querySelector('time');
  if (!time) {
    cell.textContent = '';
    time = element('time');
    cell.append(time);
  }
  const iso = new Date(millis).toISOString();
  if (time.dateTime !== iso) {
    time.dateTime = iso;
    time.title = iso;
  }
  setText(time, formatTime(millis));
}

// The next run's time and, when the plugin asked to wait, why it is later
// than the schedule says.
function updateNextRunCell(cell, row, manual) {
  // A retry's time is when the integration runs next.
  const retrying = row.status.status === 'retrying';
  updateTimeCell(cell, retrying ? row.status.at : row.next_due_at, manual ? 'manual' : '—');
  let why = cell.querySelector('.why');
  if (!row.next_due_reason || row.next_due_at === null) {
    if (why) why.remove();
    return;
  }
  if (!why) {
    why = element('span', { class: 'why meta' });
    cell.append(why);
  }
  setText(why, `later: ${row.next_due_reason}`);
}

function updateScheduleCell(cell, row) {
  let summary = cell.querySelector('.schedule-summary');
  if (!summary) {
    summary = element('span', { class: 'schedule-summary' });
    cell.append(summary, element('span', { class: 'schedule-default' }, 'plugin default'));
  }
  setText(summary, row.schedule_summary);
  cell.querySelector('.schedule-default').hidden = !row.schedule_is_default;
}

// "Processing" (and disabled) while the server shows a run, and from the
// click until it does.
function updateUpdateButton(button, row) {
  // awaitingServer first: it forgets the click once the server shows the run.
  const waiting = awaitingServer(row);
  const busy = isInFlight(row) || waiting;
  button.disabled = busy;
  setText(button, busy ? 'Processing' : 'Update now');
}

function isInFlight(row) {
  return Boolean(row && (row.run || row.status.status === 'processing'));
}

function awaitingServer(row) {
  const click = state.clicked.get(row.id);
  if (!click) return false;
  const confirmed = isInFlight(row) || row.last_success_at !== click.lastSuccess;
  if (confirmed || Date.now() - click.at > CLICK_GRACE_MS) {
    state.clicked.delete(row.id);
    return false;
  }
  return true;
}

function setRowMessage(id, text) {
  const tr = rowElement(id);
  if (!tr) return;
  setText(tr.querySelector('.row-message'), text);
  clearTimeout(state.messageTimers.get(id));
  if (text) {
    state.messageTimers.set(id, setTimeout(() => setRowMessage(id, ''), ROW_MESSAGE_MS));
  }
}

// Tells screen readers "Monzo transactions: Up to date" when a status changes.
function announceChanges(rows) {
  const changes = [];
  for (const row of rows) {
    const before = state.labels.get(row.id);
    if (before !== undefined && before !== row.status_label) changes.push(`${row.name}: ${row.status_label}`);
    state.labels.set(row.id, row.status_label);
  }
  if (changes.length) announce(changes.join('. '));
}

function announce(text) {
  const announcer = $('#announcer');
  // Clearing first makes a repeated message be read again.
  announcer.textContent = '';
  setTimeout(() => {
    announcer.textContent = text;
  }, 50);
}

// ---------------------------------------------------------- time and numbers

function startOfDay(date) {
  return new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime();
}

function formatTime(millis) {
  const date = new Date(millis);
  const now = new Date();
  const clock = date.toLocaleTimeString(undefined, { hour: 'numeric', minute: '2-digit' });
  const days = Math.round((startOfDay(date) - startOfDay(now)) / 86400000);
  if (Math.abs(days) <= 1) {
    // "today", "tomorrow", "yesterday" in the browser's language.
    const day = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' }).format(days, 'day');
    return `${day.charAt(0).toLocaleUpperCase()}${day.slice(1)} ${clock}`;
  }
  const options = { day: 'numeric', month: 'short' };
  if (date.getFullYear() !== now.getFullYear()) options.year = 'numeric';
  return `${date.toLocaleDateString(undefined, options)} ${clock}`;
}

function formatDuration(ms) {
  if (ms < 1000) return `${ms} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function formatNumber(n) {
  return Number(n).toLocaleString();
}

// ------------------------------------------------------------- Update now

async function requestUpdate(id) {
  const row = state.rows.get(id);
  if (!row) return;
  state.clicked.set(id, { at: Date.now(), lastSuccess: row.last_success_at });
  setRowMessage(id, '');
  rerenderRow(id);
  // Ends the "Processing" of a click the server never showed as a run.
  setTimeout(() => rerenderRow(id), CLICK_GRACE_MS + 100);
  try {
    await api(`/api/integrations/${id}/sync`, { method: 'POST' });
    announce(`${row.name}: update requested`);
    // Without the stream the run would only show at the next poll.
    if (state.pollTimer !== null) refreshOnce();
  } catch (error) {
    state.clicked.delete(id);
    rerenderRow(id);
    if (alreadyHandled(error)) return;
    // 429 (asked too soon) and 409 (paused) explain themselves.
    setRowMessage(id, error.message);
  }
}

function onTableClick(event) {
  const button = event.target.closest('button[data-action]');
  if (!button || button.disabled) return;
  const id = Number(button.closest('tr').dataset.id);
  const action = button.dataset.action;
  if (action === 'update-now') requestUpdate(id);
  else if (action === 'history') openHistory(id, button);
  else if (action === 'schedule') openSchedule(id, button);
}

// --------------------------------------------------------------- filters

function filtersFromLocation() {
  const params = new URLSearchParams(location.search);
  const filter = params.get('filter');
  state.filter = FILTERS.includes(filter) ? filter : 'all';
  state.search = (params.get('name') || '').trim();
  const status = params.get('status') || '';
  const known = Array.from($('#status-filter').options, (option) => option.value);
  state.status = known.includes(status) ? status : '';
  $('#search').value = state.search;
  $('#status-filter').value = state.status;
}

// Keep the choices in the address, so a reload or a bookmark keeps them.
function saveFiltersInLocation() {
  const url = new URL(location.href);
  const params = { filter: state.filter === 'all' ? '' : state.filter, name: state.search, status: state.status };
  for (const [name, value] of Object.entries(params)) {
    if (value) url.searchParams.set(name, value);
    else url.searchParams.delete(name);
  }
  history.replaceState(null, '', url);
}

// A new filter or search starts again at the first page.
function refilter() {
  saveFiltersInLocation();
  loadPage(null, []);
}

function onSearchInput() {
  clearTimeout(state.searchTimer);
  state.searchTimer = setTimeout(() => {
    const search = $('#search').value.trim();
    if (search === state.search) return;
    state.search = search;
    refilter();
  }, SEARCH_DELAY_MS);
}

function onStatusChange() {
  state.status = $('#status-filter').value;
  refilter();
}

function showFilter() {
  for (const button of document.querySelectorAll('button[data-filter]')) {
    button.setAttribute('aria-pressed', String(button.dataset.filter === state.filter));
  }
}

function onFilterClick(event) {
  const button = event.target.closest('button[data-filter]');
  if (!button || button.dataset.filter === state.filter) return;
  state.filter = button.dataset.filter;
  showFilter();
  refilter();
}

// ---------------------------------------------------------- history drawer

async function openHistory(id, opener) {
  const row = state.rows.get(id);
  if (!row) return;
  if (state.history) {
    stopHistoryTimer();
    stopLogTimer();
  }
  state.history = {
    id,
    opener,
    cursor: null,
    pagesLoaded: false,
    loading: false,
    reloadAfter: false,
    timer: null,
    logTimer: setInterval(followLogs, LOG_REFRESH_MS),
    inFlight: isInFlight(row),
    run: JSON.stringify(row.run),
  };
  $('#history-heading').textContent = `History: ${row.name}`;
  $('#history-reprocess').hidden = row.kind === 'task'; // a task stores no data
  $('#history-action-status').textContent = '';
  $('#history-list').replaceChildren();
  $('#history-more').hidden = true;
  $('#history-drawer').hidden = false;
  $('#history-close').focus();
  await loadHistory('first');
  followHistory();
}

function closeHistory({ restoreFocus = true } = {}) {
  const drawer = state.history;
  if (!drawer) return;
  stopHistoryTimer();
  stopLogTimer();
  state.history = null;
  $('#history-drawer').hidden = true;
  if (restoreFocus) restoreFocusTo(drawer.opener, drawer.id, 'history');
}

function stopHistoryTimer() {
  clearInterval(state.history.timer);
  state.history.timer = null;
}

function stopLogTimer() {
  clearInterval(state.history.logTimer);
  state.history.logTimer = null;
}

// Focus goes back to the button that opened a panel, or to the same button
// of its row if that was replaced, or else to the page heading.
function restoreFocusTo(opener, id, action) {
  let target = opener && opener.isConnected ? opener : null;
  if (!target) {
    const tr = rowElement(id);
    target = tr && tr.querySelector(`button[data-action="${action}"]`);
  }
  (target || $('#updates-heading')).focus();
}

// `first` loads (or reloads) the newest page; `more` the page after the
// cursor. Runs already shown are updated in place, so a reload keeps the
// pages loaded with "Load more".
async function loadHistory(which) {
  const drawer = state.history;
  if (!drawer) return;
  if (drawer.loading) {
    // A refresh asked for during a load must still happen: it may be the
    // one that shows how a run ended.
    if (which === 'first') drawer.reloadAfter = true;
    return;
  }
  drawer.loading = true;
  const status = $('#history-status');
  const list = $('#history-list');
  if (!list.firstElementChild) status.textContent = 'Loading…';
  const params = new URLSearchParams({ limit: '20' });
  if (which === 'more' && drawer.cursor !== null) params.set('cursor', String(drawer.cursor));
  try {
    const page = await api(`/api/integrations/${drawer.id}/sync-history?${params}`);
    if (state.history !== drawer) return;
    for (const run of page.runs) placeRun(run);
    if (which === 'more' || !drawer.pagesLoaded) drawer.cursor = page.next_cursor;
    drawer.pagesLoaded = true;
    $('#history-more').hidden = drawer.cursor === null;
    status.textContent = list.firstElementChild ? '' : 'No runs yet.';
  } catch (error) {
    if (alreadyHandled(error) || state.history !== drawer) return;
    status.textContent = `The history could not be loaded: ${error.message}`;
  } finally {
    drawer.loading = false;
  }
  if (drawer.reloadAfter && state.history === drawer) {
    drawer.reloadAfter = false;
    loadHistory('first');
  }
}

// Queues a reprocess of the open history's integration: the current plugin
// over its stored batches, no fetch. The run shows in the list as it goes.
async function requestReprocess() {
  const drawer = state.history;
  if (!drawer) return;
  const status = $('#history-action-status');
  status.textContent = '';
  try {
    const queued = await api(`/api/integrations/${drawer.id}/reprocess`, { method: 'POST' });
    if (state.history !== drawer) return;
    status.textContent = `Reprocess queued (run ${queued.run_id}).`;
    // It may start and end between two updates of the row: watch the run
    // itself until it ends (see followLogs).
    drawer.watchedRun = queued.run_id;
    loadHistory('first');
  } catch (error) {
    if (alreadyHandled(error) || state.history !== drawer) return;
    status.textContent = `The reprocess could not be queued: ${error.message}`;
  }
}

// Refreshes the open history while its instance has a run in flight: when
// the row shows the run change (it starts, progresses, ends) and on a timer
// in between (counts change without the row changing).
function followHistory() {
  const drawer = state.history;
  if (!drawer) return;
  const row = state.rows.get(drawer.id);
  const inFlight = isInFlight(row);
  if (inFlight && drawer.timer === null) {
    drawer.timer = setInterval(() => loadHistory('first'), HISTORY_REFRESH_MS);
  } else if (!inFlight && drawer.timer !== null) {
    stopHistoryTimer();
  }
  const run = JSON.stringify(row ? row.run : null);
  if (inFlight !== drawer.inFlight || run !== drawer.run) loadHistory('first');
  drawer.inFlight = inFlight;
  drawer.run = run;
}

// The list is newest first, in descending run id.
function placeRun(run) {
  const list = $('#history-list');
  let item = list.querySelector(`li[data-run-id="${Number(run.id)}"]`);
  if (!item) {
    item = createRunItem(run.id);
    const after = Array.from(list.children).find((li) => Number(li.dataset.runId) < run.id);
    list.insertBefore(item, after || null);
  }
  updateRunItem(item, run);
}

function createRunItem(id) {
  const item = element('li', { class: 'run', 'data-run-id': String(id) });
  const head = element('p', { class: 'run-head' });
  head.append(
    element('span', { class: 'run-status' }),
    element('span', { class: 'run-queue' }),
    element('span', { class: 'run-trigger' }),
    element('span', { class: 'run-started' }),
  );
  // The run's log: opened by hand, or by itself for a run under way, whose
  // lines then arrive as the plugin writes them.
  const log = element('details', { class: 'run-log' });
  log.append(
    element('summary', {}, 'Log'),
    element('p', { class: 'log-status', role: 'status' }),
    element('ol', { class: 'log-lines' }),
  );
  log.addEventListener('toggle', () => {
    if (log.open) loadRunLog(item);
  });
  item.append(head, element('p', { class: 'run-detail' }), element('p', { class: 'run-counts' }), log);
  return item;
}

// Appends the run's log lines after those shown; a run in flight is asked
// again by `followLogs` until it ends.
async function loadRunLog(item) {
  if (item.dataset.logLoading === 'yes') return;
  item.dataset.logLoading = 'yes';
  const status = item.querySelector('.log-status');
  try {
    const after = item.dataset.logNext || '0';
    const page = await api(`/api/runs/${Number(item.dataset.runId)}/logs?after=${encodeURIComponent(after)}`);
    const list = item.querySelector('.log-lines');
    for (const line of page.lines) {
      const entry = element('li', { class: `log-line log-${line.level}` });
      const at = new Date(line.at);
      entry.append(
        element('time', { datetime: at.toISOString() }, at.toLocaleTimeString()),
        ' ',
        element('span', { class: 'log-level' }, line.level),
        ' ',
        element('span', { class: 'log-message' }, line.message),
      );
      list.append(entry);
    }
    item.dataset.logNext = String(page.next);
    const inFlight = page.run.status === 'pending' || page.run.status === 'running';
    item.dataset.logFollowing = inFlight ? 'yes' : 'no';
    let note = '';
    if (!list.firstElementChild) note = inFlight ? 'Waiting for log lines…' : 'No log lines.';
    setText(status, note);
  } catch (error) {
    if (!alreadyHandled(error)) setText(status, `The log could not be loaded: ${error.message}`);
  } finally {
    item.dataset.logLoading = 'no';
  }
}

// Every LOG_REFRESH_MS while the drawer is open: new lines of open logs of
// runs in flight, and the history again while a run asked for here has not ended.
function followLogs() {
  const drawer = state.history;
  if (drawer && drawer.watchedRun !== undefined) {
    const item = document.querySelector(`#history-list li.run[data-run-id="${Number(drawer.watchedRun)}"]`);
    const ended = item && !['pending', 'running'].includes(item.dataset.status);
    if (ended) delete drawer.watchedRun;
    else loadHistory('first');
  }
  for (const log of document.querySelectorAll('#history-list details.run-log[open]')) {
    const item = log.closest('li.run');
    if (item.dataset.logFollowing === 'yes') loadRunLog(item);
  }
}

function updateRunItem(item, run) {
  item.className = `run run-${run.status}`;
  item.dataset.status = run.status;
  // The API's own word (pending, running, success, failed, cancelled), as
  // the CLI's `inlet runs` prints it.
  setText(item.querySelector('.run-status'), run.status);
  // Which half of a sync: a fetch stores batches, a process (or webhook)
  // run turns stored batches into records.
  setText(item.querySelector('.run-queue'), run.queue);
  setText(item.querySelector('.run-trigger'), run.attempt > 1 ? `${run.trigger}, attempt ${run.attempt}` : run.trigger);
  updateTimeCell(item.querySelector('.run-started'), run.started_at, 'not started');

  const detail = [];
  if (run.duration_ms !== null && run.duration_ms !== undefined) detail.push(`took ${formatDuration(run.duration_ms)}`);
  if (run.status === 'running' && run.progress_total) {
    detail.push(`${formatNumber(run.progress_done || 0)} of ${formatNumber(run.progress_total)} done`);
  }
  const batches = `${formatNumber(run.batches)} batch${run.batches === 1 ? '' : 'es'}`;
  const fetched = run.queue === 'fetch';
  detail.push(fetched ? `${formatNumber(run.items_seen)} items in ${batches} stored` : `${batches} processed`);
  setText(item.querySelector('.run-detail'), capitalise(detail.join(', ')));

  // A fetch writes no records; one from before the process queue did both.
  const r = run.records;
  const wrote = !fetched || r.created + r.updated + r.unchanged + r.deleted > 0;
  setText(
    item.querySelector('.run-counts'),
    wrote
      ? `${formatNumber(r.created)} created, ${formatNumber(r.updated)} updated, ` +
          `${formatNumber(r.unchanged)} unchanged, ${formatNumber(r.deleted)} deleted`
      : '',
  );

  updateRunError(item, run);
  if (run.status === 'running' && item.dataset.logOpened !== 'yes') {
    item.dataset.logOpened = 'yes';
    item.querySelector('details.run-log').open = true;
  }
}

function updateRunError(item, run) {
  let error = item.querySelector('.run-error');
  if (run.status !== 'failed' || (!run.error_class && !run.error_message)) {
    if (error) error.remove();
    return;
  }
  if (!error) {
    error = element('p', { class: 'run-error' });
    error.append(element('span', { class: 'run-error-class' }), ': ', element('span', { class: 'run-error-message' }));
    item.append(error);
  }
  setText(error.querySelector('.run-error-class'), run.error_class || 'error');
  setText(error.querySelector('.run-error-message'), run.error_message || '');
}

function capitalise(text) {
  return text.charAt(0).toLocaleUpperCase() + text.slice(1);
}

// --------------------------------------------------------- schedule editor


function browserTimezone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch (_) {
    return 'UTC';
  }
}

// Every IANA zone the browser knows, filled on first use (a few hundred).
function fillTimezones(select = $('#timezone')) {
  if (select.options.length) return;
  let zones = [];
  try {
    zones = Intl.supportedValuesOf('timeZone');
  } catch (_) {
    // Older browsers: the zone of this browser and UTC are still offered.
  }
  const all = new Set(['UTC', ...zones, browserTimezone()]);
  select.replaceChildren(...Array.from(all, (zone) => element('option', { value: zone }, zone)));
}

function selectTimezone(zone) {
  const select = $('#timezone');
  if (!Array.from(select.options).some((option) => option.value === zone)) {
    select.append(element('option', { value: zone }, zone)); // an alias the browser does not list
  }
  select.value = zone;
}

function intervalLabel(seconds) {
  if (seconds % 86400 === 0) return seconds === 86400 ? 'Daily' : `Every ${seconds / 86400} days`;
  if (seconds % 3600 === 0) return seconds === 3600 ? 'Every hour' : `Every ${seconds / 3600} hours`;
  if (seconds % 60 === 0) return `Every ${seconds / 60} minutes`;
  return `Every ${seconds} seconds`;
}

// Selects the preset for `seconds`, adding an option for an interval that
// is not a preset (set from the CLI or the API).
function selectInterval(seconds) {
  const select = $('#interval');
  for (const option of select.querySelectorAll('option[data-custom]')) option.remove();
  const preset = Object.keys(INTERVAL_PRESETS).find((name) => INTERVAL_PRESETS[name] === seconds);
  if (preset) {
    select.value = preset;
    return;
  }
  select.append(element('option', { value: `${seconds}s`, 'data-custom': '' }, intervalLabel(seconds)));
  select.value = `${seconds}s`;
}

async function openSchedule(id, opener) {
  const row = state.rows.get(id);
  if (!row) return;
  let view;
  try {
    view = await api(`/api/integrations/${id}`);
  } catch (error) {
    if (!alreadyHandled(error)) setRowMessage(id, `The schedule could not be loaded: ${error.message}`);
    return;
  }
  if (state.token === null) return;
  state.schedule = { id, name: view.name, opener };
  fillTimezones();
  clearScheduleError();
  fillScheduleForm(view);
  const dialog = $('#schedule-dialog');
  if (!dialog.open) dialog.showModal();
  $('#schedule-form').querySelector('input[name="kind"]:checked').focus();
}

// Pre-fills every kind's fields from the schedule in force, so that
// switching kind starts from something sensible.
function fillScheduleForm(view) {
  const settings = view.sync_settings;
  const schedule = settings.schedule;
  $('#schedule-heading').textContent = `Schedule: ${view.name}`;
  const kind = settings.schedule_is_default ? 'default' : schedule.kind;
  $('#schedule-form').querySelector(`input[name="kind"][value="${kind}"]`).checked = true;

  if (schedule.kind === 'interval') selectInterval(schedule.seconds);
  else selectInterval(INTERVAL_PRESETS[DEFAULT_INTERVAL]);
  $('#cron').value = schedule.kind === 'cron' ? schedule.expressions.join('\n') : '';
  selectTimezone(schedule.kind === 'cron' ? schedule.timezone : browserTimezone());

  $('#default-note').textContent = settings.schedule_is_default
    ? `It follows the plugin's default now: ${settings.schedule_summary}.`
    : `It runs ${settings.schedule_summary} now; the plugin's default schedule for this instance type would replace that.`;

  $('#enabled').checked = settings.enabled;
  const paused = $('#paused-note');
  const reason = settings.paused_reason;
  paused.hidden = !reason;
  paused.textContent = reason ? `Paused now (${reason}). Checking the box resumes scheduled runs.` : '';
  showKindFields();
}

function chosenKind() {
  const checked = $('#schedule-form').querySelector('input[name="kind"]:checked');
  return checked ? checked.value : 'default';
}

// Only the chosen kind's fields are shown.
function showKindFields() {
  const kind = chosenKind();
  for (const field of $('#schedule-form').querySelectorAll('[data-kind]')) {
    field.hidden = field.dataset.kind !== kind;
  }
}

function scheduleFromForm() {
  const kind = chosenKind();
  if (kind === 'interval') return { kind, every: $('#interval').value };
  if (kind === 'cron') {
    const expressions = $('#cron')
      .value.split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '');
    return { kind, expressions, timezone: $('#timezone').value };
  }
  return { kind };
}

async function onScheduleSubmit(event) {
  event.preventDefault();
  const current = state.schedule;
  if (!current) return;
  clearScheduleError();
  const save = $('#schedule-save');
  save.disabled = true;
  try {
    const body = { schedule: scheduleFromForm(), enabled: $('#enabled').checked };
    await api(`/api/integrations/${current.id}/sync-settings`, { method: 'PATCH', body });
    closeSchedule();
    announce(`${current.name}: schedule saved`);
    refreshOnce(); // the row's summary and next run change
  } catch (error) {
    if (alreadyHandled(error) || state.schedule !== current) return;
    showScheduleError(error);
  } finally {
    save.disabled = false;
  }
}

// The control that a server error's `field` names, if it is one of ours.
function fieldControl(field) {
  if (!field) return null;
  if (field === 'enabled') return $('#enabled');
  if (/^schedule\.(cron|expressions)/.test(field)) return $('#cron');
  if (field.startsWith('schedule.timezone')) return $('#timezone');
  if (/^schedule\.(interval|seconds|every)/.test(field)) return $('#interval');
  if (field === 'schedule' || field.startsWith('schedule.kind')) return $('#kind-fieldset');
  return null;
}

// Shows the server's message next to the field at fault (or above the
// buttons) and marks that control invalid.
function showScheduleError(error) {
  const message = $('#schedule-error');
  const control = error instanceof ApiError ? fieldControl(error.field) : null;
  if (control) {
    const field = control.closest('.field') || control;
    field.after(message);
    const targets = control.matches('fieldset') ? control.querySelectorAll('input') : [control];
    for (const target of targets) {
      target.setAttribute('aria-invalid', 'true');
      addDescribedBy(target, 'schedule-error');
    }
  } else {
    $('#schedule-form .dialog-actions').before(message);
  }
  message.textContent = error.message;
}

function clearScheduleError() {
  const message = $('#schedule-error');
  message.textContent = '';
  $('#schedule-form .dialog-actions').before(message);
  for (const control of $('#schedule-form').querySelectorAll('[aria-invalid]')) {
    control.removeAttribute('aria-invalid');
    removeDescribedBy(control, 'schedule-error');
  }
}

function addDescribedBy(control, id) {
  const ids = (control.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);
  if (!ids.includes(id)) control.setAttribute('aria-describedby', [...ids, id].join(' '));
}

function removeDescribedBy(control, id) {
  const ids = (control.getAttribute('aria-describedby') || '').split(' ').filter((x) => x && x !== id);
  if (ids.length) control.setAttribute('aria-describedby', ids.join(' '));
  else control.removeAttribute('aria-describedby');
}

function closeSchedule() {
  const dialog = $('#schedule-dialog');
  if (dialog.open) dialog.close(); // the close event restores focus
  else state.schedule = null;
}

function onScheduleClosed() {
  const current = state.schedule;
  state.schedule = null;
  if (current && state.token !== null) restoreFocusTo(current.opener, current.id, 'schedule');
}

// ----------------------------------------------------------------- plugins

async function openPlugins() {
  setText($('#plugins-error'), '');
  $('#plugins-dialog').showModal();
  try {
    renderPlugins(await api('/api/plugins'));
  } catch (error) {
    if (!alreadyHandled(error)) setText($('#plugins-error'), `The plugins could not be loaded: ${error.message}`);
  }
}

function closePlugins() {
  closeDialog('#plugins-dialog');
}

function closeDialog(selector) {
  const dialog = $(selector);
  if (dialog.open) dialog.close();
}

function renderPlugins(list) {
  const failures = $('#plugin-failure-list');
  failures.replaceChildren(
    ...list.failures.map((failure) => {
      const item = element('li', { class: 'plugin-failure' });
      item.append(element('code', {}, failure.file), element('p', { class: 'run-error' }, failure.reason));
      return item;
    }),
  );
  $('#plugin-failures').hidden = list.failures.length === 0;
  $('#plugin-list').replaceChildren(...list.plugins.map(pluginItem));
}

function pluginItem(plugin) {
  const item = element('li', { class: 'plugin', 'data-plugin-id': plugin.id });
  const head = element('h3', { class: 'plugin-name' }, `${plugin.name} `);
  head.append(element('span', { class: 'meta plugin-version' }, `${plugin.id} ${plugin.version} · contract ${plugin.contract} · auth ${plugin.auth}`));
  item.append(head, element('p', { class: 'hint' }, plugin.description));
  const quotas = plugin.quotas.map((q) => `${q.id}: ${formatNumber(q.requests)} requests a ${q.period} to ${q.url}`);
  if (quotas.length) item.append(element('p', { class: 'meta plugin-quotas' }, `Quotas: ${quotas.join('; ')}`));
  const types = element('ul', { class: 'instance-types' });
  for (const type of plugin.instance_types) {
    const entry = element('li', { class: 'instance-type', 'data-instance-type': type.id });
    entry.append(element('span', { class: 'instance-type-name' }, `${type.name} (${type.id}, ${type.kind})`));
    // A declared host the operator did not approve is shown as refused.
    const hosts = type.hosts.map((host) => (type.approved_hosts.includes(host) ? host : `${host} (not approved)`));
    entry.append(element('span', { class: 'meta instance-type-hosts' }, hosts.length ? hosts.join(', ') : 'no hosts'));
    types.append(entry);
  }
  item.append(types);
  return item;
}

// ------------------------------------------------------------- failed jobs

async function openFailed() {
  setText($('#failed-error'), '');
  disarm($('#failed-flush'), 'Delete all');
  $('#failed-dialog').showModal();
  await loadFailed();
}

function closeFailed() {
  closeDialog('#failed-dialog');
}

async function loadFailed() {
  try {
    const jobs = await api('/api/jobs/failed?limit=100');
    const list = $('#failed-list');
    list.replaceChildren();
    for (const job of jobs) {
      const name = job.integration_name || 'a deleted integration';
      const item = element('li', { class: 'failed-job', 'data-job-id': String(job.id) });
      const head = element('p', { class: 'failed-head' });
      head.append(
        element('span', { class: 'failed-name' }, name),
        ' ',
        element('span', { class: 'meta failed-attempts' }, `attempt ${job.attempt} of ${job.max_attempts}`),
      );
      const when = element('span', { class: 'meta failed-at' });
      updateTimeCell(when, job.finished_at, '');
      const error = element('p', { class: 'run-error' });
      error.append(
        element('span', { class: 'run-error-class' }, job.error_class || 'error'),
        ': ',
        element('span', { class: 'run-error-message' }, job.error_message || ''),
      );
      const actions = element('p', { class: 'failed-actions' });
      const retry = element('button', { type: 'button', 'data-job-action': 'retry' }, 'Retry');
      retry.setAttribute('aria-label', `Retry the failed job of ${name}`);
      actions.append(retry);
      // Its history, when its row is on the page (the filter may hide it).
      if (state.rows.has(job.integration_id)) {
        const history = element('button', { type: 'button', 'data-job-action': 'history' }, 'History');
        history.setAttribute('aria-label', `History of ${name}`);
        actions.append(history);
      }
      item.dataset.integrationId = String(job.integration_id);
      item.append(head, when, error, actions);
      list.append(item);
    }
    $('#failed-empty').hidden = jobs.length > 0;
    $('#failed-retry-all').disabled = jobs.length === 0;
    $('#failed-flush').disabled = jobs.length === 0;
  } catch (error) {
    if (!alreadyHandled(error)) setText($('#failed-error'), `The failed jobs could not be loaded: ${error.message}`);
  }
}

async function failedAction(path, method, done) {
  setText($('#failed-error'), '');
  try {
    const answer = await api(path, { method });
    announce(done(answer));
    await loadFailed();
  } catch (error) {
    if (!alreadyHandled(error)) setText($('#failed-error'), error.message);
  }
}

function onFailedClick(event) {
  const button = event.target.closest('button[data-job-action]');
  if (!button) return;
  const item = button.closest('li.failed-job');
  if (button.dataset.jobAction === 'retry') {
    failedAction(`/api/jobs/${Number(item.dataset.jobId)}/retry`, 'POST', () => 'Job queued again');
  } else {
    closeFailed();
    openHistory(Number(item.dataset.integrationId), null);
  }
}

function disarm(button, label) {
  button.dataset.confirm = 'no';
  button.textContent = label;
  if (button.dataset.label) button.setAttribute('aria-label', button.dataset.label);
}

// What cannot be undone asks twice: a first click turns the button into
// `question` and says no; a second says yes.
function confirmedTwice(button, question) {
  if (button.dataset.confirm === 'yes') return true;
  button.dataset.confirm = 'yes';
  button.textContent = question;
  // A button named for screen readers ("Delete personal") says the question too.
  const label = button.dataset.label || button.getAttribute('aria-label');
  if (label) {
    button.dataset.label = label;
    button.setAttribute('aria-label', `${question} (${label})`);
  }
  return false;
}

function onFlushFailed(event) {
  const button = event.currentTarget;
  if (!confirmedTwice(button, 'Delete all: sure?')) return;
  disarm(button, 'Delete all');
  failedAction('/api/jobs/failed', 'DELETE', (answer) => `${answer.count} failed job(s) deleted`);
}

// ------------------------------------------------------------------ tokens

async function openTokens() {
  $('#new-token').hidden = true;
  setText($('#new-token-value'), '');
  setText($('#tokens-error'), '');
  $('#tokens-dialog').showModal();
  await loadTokens();
}

function closeTokens() {
  closeDialog('#tokens-dialog'); // its close event forgets the shown token
}

async function loadTokens() {
  try {
    const list = await api('/api/tokens');
    const body = $('#tokens-body');
    body.replaceChildren();
    for (const token of list.tokens) {
      const tr = element('tr', { 'data-token-id': String(token.id) });
      const [made, used, actions] = [element('td'), element('td'), element('td')];
      updateTimeCell(made, token.created_at, '—');
      updateTimeCell(used, token.last_used_at, 'never');
      actions.append(element('button', { type: 'button', 'data-token-action': 'revoke' }, 'Revoke'));
      actions.firstChild.setAttribute('aria-label', `Revoke ${token.name}`);
      tr.append(element('td', {}, token.name), made, used, actions);
      body.append(tr);
    }
    $('#tokens-configured').hidden = !list.configured_token;
  } catch (error) {
    if (!alreadyHandled(error)) setText($('#tokens-error'), `The tokens could not be loaded: ${error.message}`);
  }
}

// Revoking asks twice (see confirmedTwice).
async function onTokensClick(event) {
  const button = event.target.closest('button[data-token-action="revoke"]');
  if (!button) return;
  if (!confirmedTwice(button, 'Revoke: sure?')) return;
  const id = Number(button.closest('tr').dataset.tokenId);
  setText($('#tokens-error'), '');
  try {
    await api(`/api/tokens/${id}`, { method: 'DELETE' });
    announce('Token revoked');
    await loadTokens();
  } catch (error) {
    if (!alreadyHandled(error)) setText($('#tokens-error'), error.message);
  }
}

async function onCreateToken(event) {
  event.preventDefault();
  setText($('#tokens-error'), '');
  const input = $('#new-token-name');
  try {
    const made = await api('/api/tokens', { method: 'POST', body: { name: input.value } });
    setText($('#new-token-value'), made.token);
    $('#new-token').hidden = false;
    announce('Token created; copy it now'); // the token itself is not read out
    input.value = '';
    await loadTokens();
  } catch (error) {
    if (!alreadyHandled(error)) setText($('#tokens-error'), error.message);
  }
}

// ------------------------------------------------------------------ records

const RECORDS_PAGE = 50;

function openRecords() {
  const history = state.history;
  const row = history && state.rows.get(history.id);
  if (!row) return;
  // what: events, objects or blocks; kind: the filter the shown list was read with.
  state.records = { id: row.id, what: 'events', kind: '', cursor: null, generation: 0 };
  setText($('#records-heading'), `Records of ${row.name}`);
  $('#records-kind').value = '';
  showRecordsWhat();
  $('#records-dialog').showModal();
  loadRecords(false);
}

function closeRecords() {
  closeDialog('#records-dialog');
}

function showRecordsWhat() {
  for (const button of document.querySelectorAll('#records-what button')) {
    button.setAttribute('aria-pressed', String(button.dataset.records === state.records.what));
  }
  // Objects and blocks come in the order they were first stored.
  const order = state.records.what === 'events' ? 'Newest first.' : 'Most recently added first.';
  setText($('#records-order'), order);
}

// A page of the integration's events, objects or blocks, newest first; `more`
// appends the next older page.
async function loadRecords(more) {
  const records = state.records;
  if (!records) return;
  records.generation += 1;
  const generation = records.generation;
  $('#records-more').disabled = true;
  setText($('#records-error'), '');
  const query = new URLSearchParams({ integration: String(records.id), order: 'newest', limit: String(RECORDS_PAGE) });
  // Older pages continue the list shown, with its filter.
  if (!more) records.kind = $('#records-kind').value.trim();
  if (records.kind) query.set('kind', records.kind);
  if (more && records.cursor) query.set('cursor', records.cursor);
  try {
    const page = await api(`/api/${records.what}?${query}`);
    if (state.records !== records || generation !== records.generation) return; // superseded
    const list = $('#records-list');
    if (!more) list.replaceChildren();
    for (const record of page[records.what]) list.append(recordItem(record, records.what));
    records.cursor = page.next_cursor;
    $('#records-more').hidden = !page.next_cursor;
    $('#records-empty').hidden = list.children.length > 0;
  } catch (error) {
    if (alreadyHandled(error) || state.records !== records || generation !== records.generation) return;
    if (!more) {
      $('#records-list').replaceChildren(); // not the records of what is now chosen
      $('#records-more').hidden = true;
    }
    setText($('#records-error'), `The records could not be loaded: ${error.message}`);
  } finally {
    $('#records-more').disabled = false;
  }
}

function recordItem(record, what) {
  const item = element('li', { class: 'record', 'data-kind': record.kind, 'data-external-id': record.external_id });
  const head = element('p', { class: 'record-head' });
  const when = element('span', { class: 'meta' });
  updateTimeCell(when, what === 'events' ? record.occurred_at : record.updated_at, '');
  head.append(when, ' ', element('strong', {}, record.kind), ' ', element('code', {}, record.external_id));
  if (record.name) head.append(' ', element('span', {}, record.name));
  if (record.event_id) head.append(' ', element('span', { class: 'meta' }, `of event ${record.event_id}`));
  if (record.value !== null && record.value !== undefined) {
    head.append(' ', element('span', { class: 'record-value' }, `${formatNumber(record.value)} ${record.unit || ''}`.trim()));
  }
  const data = element('details');
  data.append(element('summary', {}, 'Data'), element('pre', {}, JSON.stringify(record.data, null, 2)));
  item.append(head, data);
  return item;
}

function onRecordsWhat(event) {
  const button = event.target.closest('button[data-records]');
  if (!button || !state.records || button.dataset.records === state.records.what) return;
  state.records.what = button.dataset.records;
  state.records.cursor = null;
  showRecordsWhat();
  loadRecords(false);
}

// -------------------------------------------------------- new integration

const PREVIEW_DELAY_MS = 400;

async function openWizard() {
  clearWizardError();
  $('#wizard-dialog').showModal();
  fillTimezones($('#wizard-timezone'));
  $('#wizard-timezone').value = browserTimezone();
  const intervals = $('#wizard-interval');
  if (!intervals.options.length) {
    const presets = Array.from($('#interval').options).filter((option) => !option.dataset.custom);
    intervals.replaceChildren(...presets.map((option) => option.cloneNode(true)));
    intervals.value = DEFAULT_INTERVAL;
  }
  try {
    const list = await api('/api/plugins');
    state.plugins = new Map(list.plugins.map((plugin) => [plugin.id, plugin]));
    const withTypes = list.plugins.filter((plugin) => plugin.instance_types.length);
    $('#wizard-plugin').replaceChildren(
      ...withTypes.map((plugin) => element('option', { value: plugin.id }, plugin.name)),
    );
    await onWizardPlugin();
  } catch (error) {
    if (!alreadyHandled(error)) setText($('#wizard-error'), `The plugins could not be loaded: ${error.message}`);
  }
}

function closeWizard() {
  closeDialog('#wizard-dialog');
}

function wizardType() {
  const plugin = state.plugins.get($('#wizard-plugin').value);
  return plugin && plugin.instance_types.find((type) => type.id === $('#wizard-instance_type').value);
}

async function onWizardPlugin() {
  const plugin = state.plugins.get($('#wizard-plugin').value);
  if (!plugin) return;
  $('#wizard-group_id').replaceChildren(); // the last plugin's accounts are not this one's
  $('#wizard-instance_type').replaceChildren(
    ...plugin.instance_types.map((type) => element('option', { value: type.id }, `${type.name} (${type.kind})`)),
  );
  onWizardType();
  const page = await api(`/api/groups?plugin=${encodeURIComponent(plugin.id)}&limit=500`);
  if ($('#wizard-plugin').value !== plugin.id) return; // another was chosen meanwhile
  $('#wizard-group_id').replaceChildren(
    ...page.groups.map((group) => element('option', { value: String(group.id) }, group.name)),
  );
  $('#wizard-no-group').hidden = page.groups.length > 0;
}

function onWizardType() {
  const type = wizardType();
  if (!type) return;
  setText($('#wizard-type-description'), type.description);
  $('#wizard-name').placeholder = `${$('#wizard-plugin').value} ${type.id}`;
  setText($('#wizard-default-schedule'), describeSchedule(type.default_schedule));
  renderConfigFields(type.config_schema);
  clearWizardError();
}

function describeSchedule(schedule) {
  if (schedule.kind === 'interval') return intervalLabel(schedule.seconds).toLowerCase();
  if (schedule.kind === 'cron') return `${schedule.expressions.join(', ')} ${schedule.timezone}`;
  return 'only when asked';
}

// A form for the type's config, from its JSON Schema: text, numbers, a
// checkbox, a list (one per line) or a choice; anything else as JSON text.
function renderConfigFields(schema) {
  const properties = (schema && schema.properties) || {};
  const required = new Set((schema && schema.required) || []);
  const fields = Object.entries(properties).map(([name, property]) =>
    configField(name, fieldShape(property, schema), required.has(name)),
  );
  $('#wizard-config-fields').replaceChildren(...fields);
  $('#wizard-config').hidden = fields.length === 0;
}

// What a property asks for, looking through `$ref`s and a nullable
// `anyOf`/`oneOf` (how schemars writes `Option<T>`): its type (the first
// that is not null), its choices, and the type of a list's items.
function fieldShape(property, schema) {
  const definitions = (schema && (schema.$defs || schema.definitions)) || {};
  let shape = property;
  for (let depth = 0; depth < 8; depth += 1) {
    if (shape.$ref) {
      shape = definitions[shape.$ref.split('/').pop()] || {};
      continue;
    }
    const branches = (shape.anyOf || shape.oneOf || []).filter((branch) => branch.type !== 'null');
    const constants = branches.length > 1 && branches.every((branch) => 'const' in branch);
    if (branches.length === 1 && !constants) {
      shape = branches[0];
      continue;
    }
    break;
  }
  const types = (Array.isArray(shape.type) ? shape.type : [shape.type]).filter((type) => type && type !== 'null');
  const variants = (shape.anyOf || shape.oneOf || []).filter((branch) => 'const' in branch);
  const choices = shape.enum || (variants.length ? variants.map((branch) => branch.const) : null);
  return {
    type: choices ? 'choice' : types[0] || 'json',
    choices: choices && choices.filter((choice) => choice !== null),
    items: shape.items ? fieldShape(shape.items, schema).type : 'string',
    title: property.title || shape.title,
    description: property.description || shape.description,
    default: property.default !== undefined ? property.default : shape.default,
    dateTime: shape.format === 'date-time',
  };
}

function configField(name, shape, required) {
  const id = `wizard-cfg-${name}`;
  const field = element('div', { class: 'connect-field' });
  let control;
  let hint = shape.description || '';
  if (shape.type === 'choice') {
    control = element('select', { id });
    if (!required) control.append(element('option', { value: '' }, '—'));
    for (const choice of shape.choices) control.append(element('option', { value: JSON.stringify(choice) }, String(choice)));
    if (shape.default !== undefined) control.value = JSON.stringify(shape.default);
  } else if (shape.type === 'boolean') {
    control = element('input', { id, type: 'checkbox' });
    control.checked = shape.default === true;
  } else if (shape.type === 'integer' || shape.type === 'number') {
    control = element('input', { id, type: 'number', step: shape.type === 'integer' ? '1' : 'any' });
  } else if (shape.type === 'array') {
    control = element('textarea', { id, rows: '2', spellcheck: 'false' });
    hint = `${hint} One per line.`.trim();
  } else if (shape.type === 'string') {
    control = element('input', { id, type: 'text', autocomplete: 'off' });
    if (shape.dateTime) control.placeholder = '2026-01-01T00:00:00Z';
  } else {
    control = element('textarea', { id, rows: '3', spellcheck: 'false' });
    hint = `${hint} As JSON.`.trim();
  }
  control.dataset.config = name;
  control.dataset.type = shape.type;
  control.dataset.items = shape.items;
  if (shape.type === 'boolean') control.dataset.default = String(shape.default === true);
  if (required) {
    control.setAttribute('aria-required', 'true');
    control.dataset.required = 'true';
  }
  const title = `${shape.title || name}${required ? ' (required)' : ''}`;
  field.append(element('label', { for: id }, title), control);
  if (hint) {
    const note = element('p', { class: 'hint', id: `${id}-hint` }, hint);
    control.setAttribute('aria-describedby', note.id);
    field.append(note);
  }
  return field;
}

// The config the form holds; a field left empty is left out (the plugin's
// default). Throws a field error for JSON that does not parse.
function configFromForm() {
  const config = {};
  for (const control of document.querySelectorAll('#wizard-config-fields [data-config]')) {
    const { config: name, type, items } = control.dataset;
    if (type === 'boolean') {
      if (String(control.checked) !== control.dataset.default || control.dataset.required) config[name] = control.checked;
      continue;
    }
    const text = control.value.trim();
    if (text === '') continue;
    if (type === 'choice') config[name] = JSON.parse(control.value);
    else if (type === 'integer' || type === 'number') config[name] = Number(text);
    else if (type === 'array') config[name] = text.split('\n').map((line) => line.trim()).filter(Boolean).map((line) => typed(line, items));
    else if (type === 'string') config[name] = text;
    else {
      try {
        config[name] = JSON.parse(text);
      } catch (_) {
        throw { field: `config.${name}`, message: `config.${name}: is not JSON` };
      }
    }
  }
  return config;
}

function typed(text, type) {
  if (type === 'integer' || type === 'number') return Number(text);
  if (type === 'boolean') return text === 'true';
  return text;
}

function wizardKind() {
  return document.querySelector('input[name="wizard-kind"]:checked').value;
}

function wizardSchedule() {
  const kind = wizardKind();
  if (kind === 'interval') return { kind, every: $('#wizard-interval').value };
  if (kind === 'cron') {
    const expressions = $('#wizard-cron').value.split('\n').map((line) => line.trim()).filter(Boolean);
    return { kind, expressions, timezone: $('#wizard-timezone').value };
  }
  return { kind };
}

function onWizardKind() {
  const kind = wizardKind();
  for (const part of document.querySelectorAll('#wizard-schedule [data-wizard-kind]')) {
    part.hidden = part.dataset.wizardKind !== kind;
  }
  if (kind === 'cron') schedulePreview();
}

// The next runs of the cron schedule being typed, in its time zone.
function schedulePreview() {
  clearTimeout(state.previewTimer);
  state.previewTimer = setTimeout(showPreview, PREVIEW_DELAY_MS);
}

async function showPreview() {
  const schedule = wizardSchedule();
  const list = $('#wizard-preview-list');
  if (schedule.kind !== 'cron' || !schedule.expressions.length) {
    setText($('#wizard-preview-summary'), 'Type an expression to see its next runs.');
    list.replaceChildren();
    return;
  }
  try {
    const preview = await api('/api/schedules/preview', { method: 'POST', body: { schedule, count: 5 } });
    if (JSON.stringify(wizardSchedule()) !== JSON.stringify(schedule)) return; // typed on since
    setText($('#wizard-preview-summary'), `Next runs (${preview.summary}):`);
    const format = { timeZone: schedule.timezone, dateStyle: 'medium', timeStyle: 'short' };
    list.replaceChildren(
      ...preview.next.map((at) => element('li', {}, `${new Date(at).toLocaleString(undefined, format)} ${schedule.timezone}`)),
    );
  } catch (error) {
    if (alreadyHandled(error)) return;
    setText($('#wizard-preview-summary'), error.message);
    list.replaceChildren();
  }
}

async function onWizardSubmit(event) {
  event.preventDefault();
  clearWizardError();
  if (!$('#wizard-group_id').value) {
    showWizardError({ field: 'group_id', message: 'Choose an account: connect one under Connections first.' });
    return;
  }
  const body = {
    plugin: $('#wizard-plugin').value,
    instance_type: $('#wizard-instance_type').value,
    group_id: Number($('#wizard-group_id').value),
    enabled: $('#wizard-enabled').checked,
  };
  try {
    body.config = configFromForm();
  } catch (error) {
    showWizardError(error);
    return;
  }
  const name = $('#wizard-name').value.trim();
  if (name) body.name = name;
  if (wizardKind() !== 'default') body.schedule = wizardSchedule();
  const submit = $('#wizard-form button[type="submit"]');
  submit.disabled = true; // a second click would make a second integration
  try {
    const created = await api('/api/integrations', { method: 'POST', body });
    closeWizard();
    resetWizard();
    announce(`${created.name} created`);
    if (state.pollTimer !== null) refreshOnce();
  } catch (error) {
    if (!alreadyHandled(error)) showWizardError(error);
  } finally {
    submit.disabled = false;
  }
}

function resetWizard() {
  $('#wizard-form').reset();
  $('#wizard-interval').value = DEFAULT_INTERVAL;
  $('#wizard-preview-list').replaceChildren();
  setText($('#wizard-preview-summary'), '');
  onWizardKind();
}

// The control a server error names: `config.since`, `config.ids[1]`,
// `schedule.timezone`, `name`, ...
function wizardControl(field) {
  if (!field) return null;
  const config = /^config\.([^.[]+)/.exec(field);
  if (config) return $(`#wizard-cfg-${CSS.escape(config[1])}`);
  if (field === 'config') return $('#wizard-config-fields [data-config]');
  if (field.startsWith('schedule.timezone')) return $('#wizard-timezone');
  if (/^schedule\.(cron|expressions)/.test(field)) return $('#wizard-cron');
  if (/^schedule\.(interval|seconds|every)/.test(field)) return $('#wizard-interval');
  if (field.startsWith('schedule')) return $('input[name="wizard-kind"]:checked');
  return $(`#wizard-${CSS.escape(field)}`);
}

function showWizardError(error) {
  const control = wizardControl(error.field);
  setText($('#wizard-error'), error.message);
  if (!control) return;
  control.setAttribute('aria-invalid', 'true');
  control.setAttribute('aria-errormessage', 'wizard-error');
  control.focus();
}

function clearWizardError() {
  for (const control of document.querySelectorAll('#wizard-form [aria-invalid]')) {
    control.removeAttribute('aria-invalid');
    control.removeAttribute('aria-errormessage');
  }
  setText($('#wizard-error'), '');
}

// ------------------------------------------------------------- connections

async function openConnections() {
  setText($('#connections-error'), '');
  setText($('#connect-error'), '');
  $('#connected').hidden = true;
  $('#connect-link').hidden = true;
  $('#connections-dialog').showModal();
  try {
    const list = await api('/api/plugins');
    state.plugins = new Map(list.plugins.map((plugin) => [plugin.id, plugin]));
    const select = $('#connect-plugin');
    const chosen = select.value;
    select.replaceChildren(...list.plugins.map((plugin) => element('option', { value: plugin.id }, plugin.name)));
    if (state.plugins.has(chosen)) select.value = chosen;
    showConnectFields();
  } catch (error) {
    if (!alreadyHandled(error)) setText($('#connect-error'), `The plugins could not be loaded: ${error.message}`);
  }
  await loadConnections(null);
}

function closeConnections() {
  closeDialog('#connections-dialog'); // its close event forgets what was shown once
}

function forgetShownSecrets() {
  setText($('#connected-webhook-secret'), '');
  $('#connected').hidden = true;
  $('#connect-link').hidden = true;
  $('#connect-link-url').setAttribute('href', '#');
}

// One page of groups; `cursor` null starts again from the first.
async function loadConnections(cursor) {
  state.connectionsGeneration += 1;
  const generation = state.connectionsGeneration;
  const more = $('#connections-more');
  more.disabled = true;
  try {
    const query = cursor === null ? '' : `&cursor=${cursor}`;
    const page = await api(`/api/groups?limit=100${query}`);
    if (generation !== state.connectionsGeneration) return; // a newer load replaced it
    more.disabled = false;
    const body = $('#connections-body');
    if (cursor === null) body.replaceChildren();
    for (const group of page.groups) body.append(connectionRow(group));
    state.connectionsCursor = page.next_cursor;
    $('#connections-more-row').hidden = page.next_cursor === null;
    const empty = body.rows.length === 0;
    $('#connections-empty').hidden = !empty;
    $('#connections-table').hidden = empty;
  } catch (error) {
    if (!alreadyHandled(error)) setText($('#connections-error'), `The connections could not be loaded: ${error.message}`);
  }
}

function connectionRow(group) {
  const plugin = state.plugins.get(group.plugin_id);
  const tr = element('tr', { 'data-group-id': String(group.id), 'data-plugin-id': group.plugin_id });
  tr.dataset.name = group.name;
  tr.dataset.integrations = String(group.integrations);
  const status = element('td', { class: 'connection-status' });
  if (group.status === 'needs-reconnect') {
    status.append(element('span', { class: 'badge status-failed' }, 'Needs reconnect'));
    if (group.status_reason) status.append(element('p', { class: 'run-error' }, group.status_reason));
  } else {
    status.append(element('span', { class: 'badge status-up-to-date' }, 'Connected'));
  }
  const buttons = element('div', { class: 'connection-actions' });
  if (plugin && plugin.auth === 'oauth2') {
    const reconnect = element('button', { type: 'button', 'data-connection-action': 'reconnect' }, 'Reconnect');
    reconnect.setAttribute('aria-label', `Reconnect ${group.name}`);
    buttons.append(reconnect);
  }
  const remove = element('button', { type: 'button', 'data-connection-action': 'delete' }, 'Delete');
  remove.setAttribute('aria-label', `Delete ${group.name}`);
  buttons.append(remove);
  const actions = element('td');
  actions.append(buttons);
  tr.append(
    element('td', {}, group.name),
    element('td', {}, plugin ? plugin.name : group.plugin_id),
    status,
    element('td', {}, formatNumber(group.integrations)),
    actions,
  );
  return tr;
}

// The credential fields the chosen plugin takes.
function showConnectFields() {
  const plugin = state.plugins && state.plugins.get($('#connect-plugin').value);
  const needs = new Set();
  if (plugin) {
    needs.add(plugin.auth);
    if (plugin.webhook) needs.add('webhook');
  }
  for (const field of document.querySelectorAll('#connect-form [data-needs]')) {
    field.hidden = !needs.has(field.dataset.needs);
  }
  setText($('#connect-error'), '');
}

// A webhook secret nobody has to think up: 32 random bytes, hex.
function onGenerateSecret() {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  $('#connect-webhook_secret').value = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

async function onConnect(event) {
  event.preventDefault();
  forgetShownSecrets();
  clearConnectError();
  const plugin = state.plugins.get($('#connect-plugin').value);
  if (!plugin) return;
  const name = $('#connect-name').value.trim();
  try {
    if (plugin.auth === 'oauth2') {
      await showStartLink(plugin.id, name);
      return;
    }
    const body = { plugin: plugin.id, name };
    for (const input of document.querySelectorAll('#connect-form .connect-field:not([hidden]) input')) {
      if (input.value !== '') body[input.name] = input.value;
    }
    const group = await api('/api/groups', { method: 'POST', body });
    setText($('#connected-message'), `${group.name} is connected.`);
    $('#connected-webhook').hidden = !group.webhook_path;
    if (group.webhook_path) {
      setText($('#connected-webhook-url'), `${location.origin}${group.webhook_path}`);
      setText($('#connected-webhook-secret'), body.webhook_secret || '');
    }
    $('#connected').hidden = false;
    announce(`${group.name} connected`);
    for (const input of document.querySelectorAll('#connect-form input')) input.value = '';
    await loadConnections(null);
  } catch (error) {
    if (!alreadyHandled(error)) showConnectError(error);
  }
}

async function showStartLink(pluginId, groupName) {
  const link = await api(`/api/oauth/${encodeURIComponent(pluginId)}/links`, { method: 'POST', body: { group: groupName } });
  $('#connect-link-url').setAttribute('href', link.url);
  $('#connect-link').hidden = false;
  announce('Link made: open it to approve access');
}

// The server names the field at fault: mark that input and say why.
function showConnectError(error) {
  const control = error.field && $(`#connect-${error.field}`);
  if (!control) {
    setText($('#connect-error'), error.message);
    return;
  }
  control.setAttribute('aria-invalid', 'true');
  control.setAttribute('aria-describedby', 'connect-error');
  // The marked field says which one; the message says why.
  const prefix = `${error.field}: `;
  setText($('#connect-error'), error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message);
  control.focus();
}

function clearConnectError() {
  for (const input of document.querySelectorAll('#connect-form [aria-invalid]')) {
    input.removeAttribute('aria-invalid');
    input.removeAttribute('aria-describedby');
  }
  setText($('#connect-error'), '');
}

async function onConnectionsClick(event) {
  const button = event.target.closest('button[data-connection-action]');
  if (!button) return;
  const tr = button.closest('tr');
  setText($('#connections-error'), '');
  forgetShownSecrets();
  try {
    if (button.dataset.connectionAction === 'reconnect') {
      await showStartLink(tr.dataset.pluginId, tr.dataset.name);
      return;
    }
    const count = Number(tr.dataset.integrations);
    const question = count ? `Delete with its ${count} integration(s)?` : 'Delete: sure?';
    if (!confirmedTwice(button, question)) return;
    await api(`/api/groups/${Number(tr.dataset.groupId)}?confirm=true`, { method: 'DELETE' });
    announce(`${tr.dataset.name} deleted`);
    $('#connections-heading').focus(); // the focused button goes with its row
    await loadConnections(null);
  } catch (error) {
    if (button.dataset.connectionAction === 'delete') disarm(button, 'Delete');
    if (!alreadyHandled(error)) setText($('#connections-error'), error.message);
  }
}

// ------------------------------------------------------------------ start

function onKeyDown(event) {
  // The schedule dialog is modal and closes on Escape by itself.
  const dialogs = [
    '#schedule-dialog',
    '#tokens-dialog',
    '#failed-dialog',
    '#plugins-dialog',
    '#connections-dialog',
    '#wizard-dialog',
    '#records-dialog',
  ];
  const dialogOpen = dialogs.some((d) => $(d).open);
  if (event.key === 'Escape' && state.history && !dialogOpen) {
    event.preventDefault();
    closeHistory();
  }
}

// "Today" and "Tomorrow" go stale at midnight; redraw the times each minute.
function redrawTimes() {
  if (state.rows.size) renderRows(Array.from(state.rows.values()));
}

function start() {
  $('#token-form').addEventListener('submit', onSignIn);
  $('#sign-out').addEventListener('click', () => signOut('Signed out.'));
  $('.filters').addEventListener('click', onFilterClick);
  $('#refresh').addEventListener('click', refreshOnce);
  $('#search').addEventListener('input', onSearchInput);
  // Enter searches at once rather than submitting the form.
  $('#search-form').addEventListener('submit', (event) => {
    event.preventDefault();
    clearTimeout(state.searchTimer);
    state.search = $('#search').value.trim();
    refilter();
  });
  $('#status-filter').addEventListener('change', onStatusChange);
  $('#page-next').addEventListener('click', onNextPage);
  $('#page-previous').addEventListener('click', onPreviousPage);
  $('#updates-body').addEventListener('click', onTableClick);
  $('#history-close').addEventListener('click', () => closeHistory());
  $('#history-more').addEventListener('click', () => loadHistory('more'));
  $('#history-reprocess').addEventListener('click', () => requestReprocess());
  $('#schedule-form').addEventListener('submit', onScheduleSubmit);
  $('#schedule-form').addEventListener('change', (event) => {
    if (event.target.name !== 'kind') return;
    clearScheduleError(); // it was about the fields of the kind left
    showKindFields();
  });
  $('#schedule-cancel').addEventListener('click', closeSchedule);
  $('#schedule-dialog').addEventListener('close', onScheduleClosed);
  $('#history-records').addEventListener('click', openRecords);
  $('#records-close').addEventListener('click', closeRecords);
  $('#records-what').addEventListener('click', onRecordsWhat);
  $('#records-more').addEventListener('click', () => loadRecords(true));
  $('#records-kind').addEventListener('input', () => {
    clearTimeout(state.recordsTimer);
    state.recordsTimer = setTimeout(() => loadRecords(false), SEARCH_DELAY_MS);
  });
  $('#records-filter').addEventListener('submit', (event) => {
    event.preventDefault();
    loadRecords(false);
  });
  $('#records-dialog').addEventListener('close', () => {
    state.records = null;
  });
  $('#open-wizard').addEventListener('click', () => goToView('/integrations/new'));
  $('#wizard-cancel').addEventListener('click', closeWizard);
  $('#wizard-plugin').addEventListener('change', () =>
    onWizardPlugin().catch((error) => alreadyHandled(error) || setText($('#wizard-error'), error.message)),
  );
  $('#wizard-instance_type').addEventListener('change', onWizardType);
  $('#wizard-schedule').addEventListener('change', (event) => {
    if (event.target.name === 'wizard-kind') onWizardKind();
    else schedulePreview();
  });
  $('#wizard-cron').addEventListener('input', schedulePreview);
  $('#wizard-form').addEventListener('submit', onWizardSubmit);
  $('#open-connections').addEventListener('click', () => goToView('/connections'));
  $('#connections-close').addEventListener('click', closeConnections);
  $('#connections-dialog').addEventListener('close', () => {
    forgetShownSecrets();
    for (const input of document.querySelectorAll('#connect-form input')) input.value = '';
    clearConnectError();
  });
  $('#connections-body').addEventListener('click', onConnectionsClick);
  $('#connections-more').addEventListener('click', () => loadConnections(state.connectionsCursor));
  $('#connect-plugin').addEventListener('change', showConnectFields);
  $('#connect-generate').addEventListener('click', onGenerateSecret);
  $('#connect-form').addEventListener('submit', onConnect);
  $('#open-plugins').addEventListener('click', () => goToView('/plugins'));
  $('#plugins-close').addEventListener('click', closePlugins);
  $('#open-failed').addEventListener('click', () => goToView('/jobs/failed'));
  $('#failed-close').addEventListener('click', closeFailed);
  $('#failed-list').addEventListener('click', onFailedClick);
  $('#failed-retry-all').addEventListener('click', () =>
    failedAction('/api/jobs/failed/retry', 'POST', (answer) => `${answer.count} job(s) queued again`),
  );
  $('#failed-flush').addEventListener('click', onFlushFailed);
  $('#open-tokens').addEventListener('click', () => goToView('/tokens'));
  $('#tokens-close').addEventListener('click', closeTokens);
  // Escape closes a dialog without the button: the shown token goes either way.
  $('#tokens-dialog').addEventListener('close', () => setText($('#new-token-value'), ''));
  $('#tokens-body').addEventListener('click', onTokensClick);
  $('#token-create-form').addEventListener('submit', onCreateToken);
  document.addEventListener('keydown', onKeyDown);
  for (const view of Object.values(VIEWS)) $(view.dialog).addEventListener('close', onViewClosed);
  window.addEventListener('popstate', showViewOfLocation);
  $('nav.sidebar').addEventListener('click', (event) => {
    const link = event.target.closest('a');
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || !state.token) return;
    event.preventDefault();
    const path = link.getAttribute('href');
    if (VIEWS[path]) goToView(path);
    else if (VIEWS[location.pathname]) $(VIEWS[location.pathname].dialog).close(); // back to the list
  });
  setInterval(redrawTimes, 60000);

  filtersFromLocation();
  showFilter();
  state.token = readStoredToken();
  if (state.token) showApp();
  else showSignIn('');
}

start();
