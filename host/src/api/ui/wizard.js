// The New integration page: plugin, type, account, settings from the type's JSON Schema, schedule
// (with a preview of cron's next runs) and the enabled toggle.
//
// Part of the operator console: see base.js for how its files fit together.
'use strict';

// -------------------------------------------------------- new integration

const PREVIEW_DELAY_MS = 400;

async function openWizard() {
  clearWizardError();
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
    resetWizard();
    goTo('/updates');
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
  showFieldError($('#wizard-error'), wizardControl(error.field), error);
}

function clearWizardError() {
  clearFieldErrors($('#wizard-form'), $('#wizard-error'));
}
