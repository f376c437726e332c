// The history drawer of an Updates row: its runs, newest first, with their live log lines, and
// "Reprocess stored data".
//
// Part of the operator console: see base.js for how its files fit together.
'use strict';

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
