// The Connections page: accounts with their status; connect, reconnect and delete.
//
// Part of the operator console: see base.js for how its files fit together.
'use strict';

// ------------------------------------------------------------- connections

async function openConnections() {
  setText($('#connections-error'), '');
  setText($('#connect-error'), '');
  $('#connected').hidden = true;
  $('#connect-link').hidden = true;
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

// What was shown once (a webhook secret, a link) and typed goes with the
// page, and so does a Delete asked about: the table is kept for next time.
function leaveConnections() {
  forgetShownSecrets();
  for (const button of document.querySelectorAll('#connections-body button[data-confirm=yes]')) disarm(button, 'Delete');
  for (const input of document.querySelectorAll('#connect-form input')) input.value = '';
  clearConnectError();
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
    const rows = page.groups.map(connectionRow);
    if (cursor === null) setChildren(body, rows, (row) => row.dataset.groupId);
    else body.append(...rows);
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

function showConnectError(error) {
  showFieldError($('#connect-error'), error.field ? $(`#connect-${CSS.escape(error.field)}`) : null, error);
}

function clearConnectError() {
  clearFieldErrors($('#connect-form'), $('#connect-error'));
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
    // Confirmed for the integrations asked about only: if one was added or
    // deleted since, the server refuses and the row is shown as it is now.
    await api(`/api/groups/${Number(tr.dataset.groupId)}?confirm=true&integrations=${count}`, { method: 'DELETE' });
    announce(`${tr.dataset.name} deleted`);
    $('#connections-heading').focus(); // the focused button goes with its row
    await loadConnections(null);
  } catch (error) {
    if (!alreadyHandled(error)) setText($('#connections-error'), error.message);
    if (button.dataset.connectionAction === 'delete') {
      disarm(button, 'Delete');
      await loadConnections(null); // the row shows what the refusal was about
    }
  }
}
