// The Records page of an integration (/integrations/{id}/records): its events, objects and blocks,
// newest first, by kind, a page at a time.
//
// Part of the operator console: see base.js for how its files fit together.
'use strict';

// ------------------------------------------------------------------ records

const RECORDS_PAGE = 50;

// The Records page of integration `id` (its address names it).
async function openRecords(id) {
  // what: events, objects or blocks; kind: the filter the shown list was
  // read with; pages: how many are shown.
  const records = { id, what: 'events', kind: '', cursor: null, pages: 0, generation: 0 };
  state.records = records;
  setText($('#records-heading'), 'Records');
  $('#records-kind').value = '';
  $('#records-list').replaceChildren();
  $('#records-more').hidden = true;
  $('#records-empty').hidden = true;
  showRecordsWhat();
  loadRecords(false);
  const row = state.rows.get(id);
  const name = row ? row.name : (await api(`/api/integrations/${id}`)).name;
  if (state.records === records) setText($('#records-heading'), `Records of ${name}`);
}

function leaveRecords() {
  state.records = null;
}

// The page follows its integration's Updates row, while the stream follows
// a page of rows with it: a run that ended may have stored records, so the
// newest page is read again (unless older pages are shown, which would go).
function recordsRowChanged(before, after) {
  const records = state.records;
  const ended = before && before.run && !after.run;
  if (records && records.id === after.id && ended && records.pages <= 1) loadRecords(false);
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
    const items = page[records.what].map((record) => recordItem(record, records.what));
    if (more) list.append(...items);
    else setChildren(list, items, (item) => `${item.dataset.kind}/${item.dataset.externalId}`);
    records.pages = more ? records.pages + 1 : 1;
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
