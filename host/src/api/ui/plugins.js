// The Plugins page: what is loaded, and the files that did not load.
//
// Part of the operator console: see base.js for how its files fit together.
'use strict';

// ----------------------------------------------------------------- plugins

async function openPlugins() {
  await loadPlugins();
}

async function loadPlugins() {
  setText($('#plugins-error'), '');
  try {
    renderPlugins(await api('/api/plugins'));
  } catch (error) {
    if (!alreadyHandled(error)) setText($('#plugins-error'), `The plugins could not be loaded: ${error.message}`);
  }
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
  setChildren($('#plugin-list'), list.plugins.map(pluginItem), (item) => item.dataset.pluginId);
}

function pluginItem(plugin) {
  const item = element('li', { class: 'plugin', 'data-plugin-id': plugin.id });
  const head = element('h2', { class: 'plugin-name' }, `${plugin.name} `);
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
