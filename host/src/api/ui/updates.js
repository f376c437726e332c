// The Updates page: integrations and tasks with their status, a page at a time, searchable by name
// and status, with "Update now".
//
// Part of the operator console: see base.js for how its files fit together.
'use strict';

// ----------------------------------------------------------------- the rows

// A whole page: from the stream's first event, a poll or a refresh.
function applyPage(page, sequence) {
  if (sequence < state.applied) return; // an older reply that arrived late
  state.applied = sequence;
  hideBanner();
  $('#loading').hidden = true;
  announceChanges(page.rows);
  for (const row of page.rows) recordsRowChanged(state.rows.get(row.id), row);
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

// Back (or Forward) to an Updates address whose filters are not the ones
// shown: show its filters' rows.
function followFiltersInLocation() {
  if (location.search === state.updatesSearch) return;
  filtersFromLocation();
  showFilter();
  state.updatesSearch = location.search;
  loadPage(null, []);
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
  state.updatesSearch = url.search;
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
