// The console's pages, each at its own address, the menu's counts from the console summary, and
// the start. Loaded last: the pages table names the other files' functions.
//
// Part of the operator console: see base.js for how its files fit together.
'use strict';

// ------------------------------------------------------------------ pages

// The console's pages, each at its own address (the server serves this
// document at each): the address shows its page, also when typed or
// bookmarked; the menu and links move between them without a reload, and
// Back returns. `open` fills a page as it is shown (with the address's
// parts), `leave` forgets what it showed once, and a page `live` on some
// fields of the console summary is reloaded by `refresh` when they change.
const PAGES = [
  { path: '/updates', view: '#updates-view', title: 'Updates', leave: leaveUpdates },
  { path: '/integrations/new', view: '#wizard-view', title: 'New integration', open: openWizard },
  {
    path: '/connections',
    view: '#connections-view',
    title: 'Connections',
    open: openConnections,
    leave: leaveConnections,
    live: ['groups', 'groups_need_reconnect'],
    refresh: () => loadConnections(null),
  },
  {
    path: '/plugins',
    view: '#plugins-view',
    title: 'Plugins',
    open: openPlugins,
    live: ['plugin_files', 'plugin_load_failures'],
    refresh: loadPlugins,
  },
  {
    path: '/jobs/failed',
    view: '#failed-view',
    title: 'Failed jobs',
    open: openFailed,
    live: ['failed_jobs', 'newest_failure_at'],
    refresh: loadFailed,
  },
  { path: '/tokens', view: '#tokens-view', title: 'Admin tokens', open: openTokens, leave: leaveTokens },
  {
    path: /^\/integrations\/(\d+)\/records$/,
    view: '#records-view',
    title: 'Records',
    open: (id) => openRecords(Number(id)),
    leave: leaveRecords,
  },
];

// The page at `pathname` and the parts its address names; Updates for any other.
function pageAt(pathname) {
  for (const page of PAGES) {
    if (page.path === pathname) return { page, parts: [] };
    const match = page.path instanceof RegExp && page.path.exec(pathname);
    if (match) return { page, parts: match.slice(1) };
  }
  return { page: PAGES[0], parts: [] };
}

// Show the page at `path` (a link, a button): its address first, so that
// Back returns to the page before.
function goTo(path) {
  if (location.pathname === path) return;
  // Updates keeps its filters in the query; other pages take none.
  const query = path === '/updates' ? state.updatesSearch : '';
  history.pushState({}, '', path + query);
  showPageOfLocation();
  focusPage();
}

// Make the page shown the one the address names.
function showPageOfLocation() {
  if (!state.token) return; // signing in shows it
  const { page, parts } = pageAt(location.pathname);
  const shown = state.page;
  if (page === PAGES[0]) followFiltersInLocation();
  if (shown && shown.path === location.pathname) return;
  if (shown) shown.page.leave?.();
  state.page = { page, path: location.pathname };
  for (const other of PAGES) $(other.view).hidden = other !== page;
  for (const link of document.querySelectorAll('nav.sidebar a')) {
    if (pageAt(link.getAttribute('href')).page === page) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `${page.title} · inlet`;
  if (page.open) {
    Promise.resolve(page.open(...parts)).catch((error) => alreadyHandled(error) || showBanner(error.message));
  }
}

// After moving to a page, its heading takes focus, so that a screen reader
// says where it is and Tab starts from there.
function focusPage() {
  const page = state.page && state.page.page;
  if (page) $(`${page.view} h1`).focus();
}

function leaveUpdates() {
  clearTimeout(state.searchTimer); // it would write its query on the next page's address
  closeHistory({ restoreFocus: false });
  closeSchedule();
}

// A link within the console moves to its page without a reload (a modified
// click opens a new tab as usual).
function onLinkClick(event) {
  const link = event.target.closest('a[href^="/"]');
  if (!link || link.target || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey || !state.token) return;
  const path = link.getAttribute('href');
  if (!PAGES.some((page) => page.path === path || (page.path instanceof RegExp && page.path.test(path)))) return;
  event.preventDefault();
  goTo(path);
}

// ------------------------------------------------------ the console summary

// What needs the operator, from the stream's `console` events (or a poll):
// counts beside the menu's pages, and a reload of the page shown when what
// it lists changed.
function applyConsole(summary) {
  const before = state.console;
  state.console = summary;
  const reconnect = summary.groups_need_reconnect;
  const unloaded = summary.plugin_load_failures.length;
  showMenuCount('#menu-count-failed', summary.failed_jobs, `${summary.failed_jobs} failed`);
  showMenuCount('#menu-count-connections', reconnect, `${reconnect} to reconnect`);
  showMenuCount('#menu-count-plugins', unloaded, `${unloaded} not loaded`);
  const page = state.page && state.page.page;
  if (!before || !page || !page.live) return;
  const changed = page.live.some((field) => JSON.stringify(before[field]) !== JSON.stringify(summary[field]));
  if (changed) Promise.resolve(page.refresh()).catch((error) => alreadyHandled(error) || showBanner(error.message));
}

// The count shows; a screen reader reads the label with the link's name.
function showMenuCount(selector, count, label) {
  const badge = $(selector);
  const shown = element('span', { 'aria-hidden': 'true' }, String(count));
  badge.replaceChildren(shown, element('span', { class: 'visually-hidden' }, ` (${label})`));
  badge.title = label;
  badge.hidden = !count;
}

// Forget the token and everything shown with it.
function signOut(message) {
  if (state.token === null) return;
  state.token = null;
  storeToken(null);
  disconnect();
  if (state.page) state.page.page.leave?.();
  state.page = null;
  state.console = null;
  clearRows();
  state.cursor = null;
  state.previous = [];
  hideBanner();
  showSignIn(message);
}

// ------------------------------------------------------------------ start

function onKeyDown(event) {
  // The schedule dialog is modal and closes on Escape by itself.
  if (event.key === 'Escape' && state.history && !$('#schedule-dialog').open) {
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
  $('#updates-filters').addEventListener('click', onFilterClick);
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
  $('#history-records').addEventListener('click', () => goTo(`/integrations/${state.history.id}/records`));
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
  $('#wizard-cancel').addEventListener('click', () => goTo('/updates'));
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
  $('#connections-body').addEventListener('click', onConnectionsClick);
  $('#connections-more').addEventListener('click', () => loadConnections(state.connectionsCursor));
  $('#connect-plugin').addEventListener('change', showConnectFields);
  $('#connect-generate').addEventListener('click', onGenerateSecret);
  $('#connect-form').addEventListener('submit', onConnect);
  $('#failed-list').addEventListener('click', onFailedClick);
  $('#failed-retry-all').addEventListener('click', () =>
    failedAction('/api/jobs/failed/retry', 'POST', (answer) => `${answer.count} job(s) queued again`),
  );
  $('#failed-flush').addEventListener('click', onFlushFailed);
  $('#tokens-body').addEventListener('click', onTokensClick);
  $('#token-create-form').addEventListener('submit', onCreateToken);
  document.addEventListener('keydown', onKeyDown);
  window.addEventListener('popstate', () => {
    showPageOfLocation();
    focusPage();
  });
  document.addEventListener('click', onLinkClick);
  setInterval(redrawTimes, 60000);

  filtersFromLocation();
  if (location.pathname === '/updates') state.updatesSearch = location.search;
  showFilter();
  state.token = readStoredToken();
  if (state.token) showApp();
  else showSignIn('');
}

start();
