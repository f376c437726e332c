// The Admin tokens page: list, create (shown once) and revoke.
//
// Part of the operator console: see base.js for how its files fit together.
'use strict';

// ------------------------------------------------------------------ tokens

async function openTokens() {
  $('#new-token').hidden = true;
  setText($('#new-token-value'), '');
  setText($('#tokens-error'), '');
  await loadTokens();
}

// A token is shown once: leaving the page forgets it.
function leaveTokens() {
  $('#new-token').hidden = true;
  setText($('#new-token-value'), '');
}

async function loadTokens() {
  try {
    const list = await api('/api/tokens');
    const body = $('#tokens-body');
    body.replaceChildren();
    for (const token of list.tokens) {
      const tr = element('tr', { 'data-token-id': String(token.id) });
      const [made, used, actions] = [element('td'), element('td'), element('td')];
      updateTimeCell(made, token.created_at, '—');
      updateTimeCell(used, token.last_used_at, 'never');
      actions.append(element('button', { type: 'button', 'data-token-action': 'revoke' }, 'Revoke'));
      actions.firstChild.setAttribute('aria-label', `Revoke ${token.name}`);
      tr.append(element('td', {}, token.name), made, used, actions);
      body.append(tr);
    }
    $('#tokens-configured').hidden = !list.configured_token;
  } catch (error) {
    if (!alreadyHandled(error)) setText($('#tokens-error'), `The tokens could not be loaded: ${error.message}`);
  }
}

// Revoking asks twice (see confirmedTwice).
async function onTokensClick(event) {
  const button = event.target.closest('button[data-token-action="revoke"]');
  if (!button) return;
  if (!confirmedTwice(button, 'Revoke: sure?')) return;
  const id = Number(button.closest('tr').dataset.tokenId);
  setText($('#tokens-error'), '');
  try {
    await api(`/api/tokens/${id}`, { method: 'DELETE' });
    announce('Token revoked');
    await loadTokens();
  } catch (error) {
    if (!alreadyHandled(error)) setText($('#tokens-error'), error.message);
  }
}

async function onCreateToken(event) {
  event.preventDefault();
  setText($('#tokens-error'), '');
  const input = $('#new-token-name');
  try {
    const made = await api('/api/tokens', { method: 'POST', body: { name: input.value } });
    setText($('#new-token-value'), made.token);
    $('#new-token').hidden = false;
    announce('Token created; copy it now'); // the token itself is not read out
    input.value = '';
    await loadTokens();
  } catch (error) {
    if (!alreadyHandled(error)) setText($('#tokens-error'), error.message);
  }
}
