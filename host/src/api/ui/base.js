// The console's base: its constants and state, the admin API, signing in and out, and the stream (or
// polling) that keeps the Updates rows and the console summary current.
//
// Part of inlet's operator console, served under /ui/ and loaded by
// console.html as classic deferred scripts, in order, sharing one global
// scope (base.js first, console.js last). Plain ES2020, no framework and no
// build step: the host embeds these files. Names and messages come from users
// and plugins, so API data is only ever written with textContent or
// attributes, never parsed as HTML.
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
// select in console.html offers.
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
  plugins: new Map(), // id -> plugin, for the Connections page and the wizard
  connectionsCursor: null, // where the next page of connections starts
  connectionsGeneration: 0, // bumped by each load; older replies are dropped
  previewTimer: null,
  page: null, // { page, path }: the page shown (see PAGES)
  updatesSearch: '', // the Updates page's query, kept while other pages are shown
  console: null, // the last console summary (see applyConsole)
  records: null, // { id, what, cursor, generation } while the Records page is shown
  recordsTimer: null,
};

const $ = (selector) => document.querySelector(selector);

// Makes `items` the children of `list`, keeping each child whose `key`
// matches an item's and that was built as that item is now: a live reload
// then touches only what changed, and a kept child is never moved, so focus,
// an opened <details>, a button asked to confirm and the element a click is
// on survive it. Keys keep their order (lists here are newest first).
function setChildren(list, items, key) {
  const old = new Map(Array.from(list.children, (child) => [key(child), child]));
  const next = items.map((item) => {
    const kept = old.get(key(item));
    if (kept && builtAs.get(kept)?.isEqualNode(item)) return kept;
    builtAs.set(item, item.cloneNode(true));
    return item;
  });
  const keep = new Set(next);
  for (const child of Array.from(list.children)) if (!keep.has(child)) child.remove();
  next.forEach((item, i) => {
    if (list.children[i] !== item) list.insertBefore(item, list.children[i] || null);
  });
}

// A copy of each child setChildren placed, as it was built. Compared with
// that, not with the child as it is now, what the operator changed on it
// since (an opened <details>, an armed "sure?") is not taken for new
// content. A child placed otherwise ("Load more") is replaced on a reload.
const builtAs = new WeakMap();

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

// Only a changed text is written: a live reload then leaves what is read
// aloud and what is selected alone.
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

// Say what the server refused in `message`, and mark the form's control it
// names, if any: the marked control says which field, the message says why
// (and which entry, for a path such as `config.ids[1]`).
function showFieldError(message, control, error) {
  const prefix = `${error.field}: `;
  const said = control && /^\w+$/.test(error.field) && error.message.startsWith(prefix);
  setText(message, said ? error.message.slice(prefix.length) : error.message);
  if (!control) return;
  control.setAttribute('aria-invalid', 'true');
  control.setAttribute('aria-errormessage', message.id);
  control.focus();
}

function clearFieldErrors(form, message) {
  for (const control of form.querySelectorAll('[aria-invalid]')) {
    control.removeAttribute('aria-invalid');
    control.removeAttribute('aria-errormessage');
  }
  setText(message, '');
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
  focusPage();
}

function showSignInMessage(text) {
  $('#sign-in-message').textContent = text;
}

function showSignIn(message) {
  $('#app').hidden = true;
  $('#sign-out').hidden = true;
  $('#sign-in').hidden = false;
  showSignInMessage(message || '');
  $('#token').focus();
}

function showApp() {
  $('#sign-in').hidden = true;
  $('#app').hidden = false;
  $('#sign-out').hidden = false;
  connect();
  showPageOfLocation();
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
    // A `page` and the `console` summary first, then the `changes` to
    // the page and each new summary.
    await readEvents(response.body, (event) => {
      if (generation !== state.generation) return;
      if (event.type === 'page') applyPage(JSON.parse(event.data), nextSequence());
      else if (event.type === 'changes') applyChanges(JSON.parse(event.data), nextSequence());
      else if (event.type === 'console') applyConsole(JSON.parse(event.data));
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
    const [page, summary] = await Promise.all([api(`/api/updates?${updatesQuery()}`), api('/api/console')]);
    if (generation !== state.generation) return;
    applyPage(page, sequence);
    applyConsole(summary);
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
