// The schedule editor of an Updates row.
//
// Part of the operator console: see base.js for how its files fit together.
'use strict';

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
  // Signed out or on another page meanwhile: no dialog over it.
  if (state.token === null || !state.page || state.page.page !== PAGES[0]) return;
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
