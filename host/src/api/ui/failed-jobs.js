// The Failed jobs page: retry one or all, or delete them.
//
// Part of the operator console: see base.js for how its files fit together.
'use strict';

// ------------------------------------------------------------- failed jobs

async function openFailed() {
  setText($('#failed-error'), '');
  disarm($('#failed-flush'), 'Delete all');
  await loadFailed();
}

async function loadFailed() {
  try {
    const jobs = await api('/api/jobs/failed?limit=100');
    const items = [];
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
      items.push(item);
    }
    setChildren($('#failed-list'), items, (item) => item.dataset.jobId);
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
    goTo('/updates');
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
