// bt's page: the torrent list, kept live by the event stream (GET /api/v1/events),
// never by polling. Actions go through the JSON API (api.js).

import { api } from './api.js';
import { Details } from './details.js';
import { el, progressBar, setProgress, setText } from './dom.js';
import { bytes, duration, limit, percent, rate } from './format.js';

const $ = (selector) => document.querySelector(selector);
const PAUSED = new Set(['paused', 'stopped']);
const LIFECYCLE_EVENTS = ['torrent-added', 'metadata-received', 'state-changed', 'finished'];

const torrents = new Map(); // info_hash -> the API's torrent object (or a partial one)
const rows = new Map(); // info_hash -> <tr>
let details;
let messageTimer;

function report(text, isError = false) {
  const message = $('#message');
  message.textContent = text;
  message.className = isError ? 'error' : '';
  clearTimeout(messageTimer);
  messageTimer = setTimeout(() => { message.textContent = ''; }, isError ? 12000 : 5000);
}

// -- the list --------------------------------------------------------------------------

function makeRow(hash) {
  const actions = el('td', { class: 'actions' },
    el('button', { type: 'button', dataset: { action: 'toggle' } }, 'Pause'),
    el('button', { type: 'button', dataset: { action: 'recheck' } }, 'Recheck'),
    el('button', { type: 'button', dataset: { action: 'remove' }, class: 'danger' }, 'Remove'),
    el('span', { class: 'confirm', hidden: '' },
      el('button', { type: 'button', dataset: { action: 'remove-keep' } }, 'Keep data'),
      el('button', { type: 'button', dataset: { action: 'remove-delete' }, class: 'danger' },
        'Delete data'),
      el('button', { type: 'button', dataset: { action: 'remove-cancel' }, class: 'quiet' },
        'Cancel')));
  const row = el('tr', { dataset: { hash } },
    el('td', { class: 'name' }, el('span', { class: 'title' }), el('span', { class: 'error' })),
    el('td', { class: 'progress' }, progressBar(0, '')),
    el('td', { class: 'state' }),
    el('td', { class: 'num down' }),
    el('td', { class: 'num up' }),
    el('td', { class: 'num peers' }),
    el('td', { class: 'num eta' }),
    el('td', { class: 'num size' }),
    actions);
  row.addEventListener('click', (event) => onRowClick(hash, event));
  return row;
}

function renderRow(torrent) {
  const hash = torrent.info_hash;
  let row = rows.get(hash);
  if (!row) {
    row = makeRow(hash);
    rows.set(hash, row);
    $('#torrents tbody').append(row);
  }
  const cell = (name) => row.querySelector(`.${name}`);
  setText(cell('title'), torrent.name || hash);
  setText(cell('error'), torrent.error ? ` ${torrent.error}` : '');
  const size = torrent.size ?? null;
  setProgress(cell('progressbox'), torrent.progress ?? 0, percent(torrent.progress ?? 0));
  setText(cell('state'), torrent.state || '');
  row.dataset.state = torrent.state || '';
  setText(cell('down'), torrent.download_rate === undefined ? '' : rate(torrent.download_rate));
  setText(cell('up'), torrent.upload_rate === undefined ? '' : rate(torrent.upload_rate));
  setText(cell('peers'), torrent.peers === undefined ? '' : `${torrent.peers} (${torrent.seeds ?? 0})`);
  setText(cell('eta'), duration(torrent.eta));
  setText(cell('size'), size === null ? '' : bytes(size));
  setText(row.querySelector('[data-action=toggle]'), PAUSED.has(torrent.state) ? 'Resume' : 'Pause');
  row.classList.toggle('selected', details.hash === hash);
}

function update(torrent) {
  const merged = { ...(torrents.get(torrent.info_hash) || {}), ...torrent };
  torrents.set(torrent.info_hash, merged);
  renderRow(merged);
}

function forget(hash) {
  torrents.delete(hash);
  const row = rows.get(hash);
  if (row) row.remove();
  rows.delete(hash);
  details.removed(hash);
  renderTotals();
}

function replaceAll(list) {
  const seen = new Set(list.map((t) => t.info_hash));
  for (const hash of [...torrents.keys()]) if (!seen.has(hash)) forget(hash);
  for (const torrent of list) update(torrent);
  renderTotals();
}

function renderTotals() {
  let down = 0;
  let up = 0;
  let peers = 0;
  for (const t of torrents.values()) {
    down += t.download_rate || 0;
    up += t.upload_rate || 0;
    peers += t.peers || 0;
  }
  setText($('#total-down'), rate(down));
  setText($('#total-up'), rate(up));
  setText($('#total-peers'), String(peers));
  $('#empty').hidden = torrents.size > 0;
}

// -- actions ---------------------------------------------------------------------------

async function onRowClick(hash, event) {
  const button = event.target.closest('button');
  if (!button) {
    for (const row of rows.values()) row.classList.toggle('selected', row.dataset.hash === hash);
    details.open(hash);
    return;
  }
  event.stopPropagation();
  const row = rows.get(hash);
  const confirm = row.querySelector('.confirm');
  const name = (torrents.get(hash) || {}).name || hash;
  try {
    switch (button.dataset.action) {
      case 'toggle':
        update(PAUSED.has(row.dataset.state) ? await api.resume(hash) : await api.pause(hash));
        break;
      case 'recheck':
        update(await api.recheck(hash));
        report(`Rechecking ${name}.`);
        break;
      case 'remove':
        confirm.hidden = false;
        break;
      case 'remove-cancel':
        confirm.hidden = true;
        break;
      case 'remove-keep':
      case 'remove-delete': {
        const deleteData = button.dataset.action === 'remove-delete';
        confirm.hidden = true;
        await api.remove(hash, deleteData);
        forget(hash);
        report(`Removed ${name}${deleteData ? ' and its data' : ''}.`);
        break;
      }
      default:
    }
  } catch (error) {
    report(`${name}: ${error.message}`, true);
  }
}

// Adds what ``adding()`` sends; clears ``input`` once the torrent is in the list.
async function add(input, adding, what) {
  try {
    const torrent = await adding($('#add-paused').checked);
    update(torrent);
    renderTotals();
    input.value = '';
    report(`Added ${torrent.name}.`);
  } catch (error) {
    report(`${what}: ${error.message}`, true);
  }
}

function addFile(event) {
  event.preventDefault();
  const input = $('#torrent-file');
  const [file] = input.files;
  if (!file) report('Choose a .torrent file first.', true);
  else add(input, (paused) => api.upload(file, paused), file.name);
}

function addMagnet(event) {
  event.preventDefault();
  const input = $('#magnet');
  const magnet = input.value.trim();
  if (magnet) add(input, (paused) => api.addMagnet(magnet, paused), 'magnet');
}

function showSession(session) {
  $('#session-down').value = limit(session.download_limit);
  $('#session-up').value = limit(session.upload_limit);
  setText($('#session-info'), `bt ${session.version}, listening on port ${session.listen_port}`);
}

async function setSessionLimits(event) {
  event.preventDefault();
  const down = $('#session-down').value.trim();
  const up = $('#session-up').value.trim();
  try {
    showSession(await api.setSessionLimits({ download_limit: down || null, upload_limit: up || null }));
    report('Session limits set.');
  } catch (error) {
    report(error.message, true);
  }
}

async function logout() {
  await api.logout();
  window.location.assign('/');
}

// -- live updates ----------------------------------------------------------------------

function live(state, text) {
  const badge = $('#live');
  badge.className = `live ${state}`;
  badge.textContent = text;
}

// A stream the browser gave up on (an HTTP error such as 503 with too many streams
// open) is opened anew after this many ms, and the list read once to catch up.
const REOPEN_MS = 5000;

function connectEvents(reopened = false) {
  const events = new EventSource('/api/v1/events');
  events.addEventListener('open', async () => {
    live('on', 'live');
    if (reopened) replaceAll((await api.torrents()).torrents);
  });
  events.addEventListener('error', async () => {
    live('off', 'reconnecting');
    // After a network error EventSource retries by itself (with Last-Event-ID).
    if (events.readyState === EventSource.CLOSED) setTimeout(() => connectEvents(true), REOPEN_MS);
    try {
      await api.session(); // a 401 means logged out: api.request goes to the log-in form
    } catch {
      /* reported by the stream's badge */
    }
  });
  events.addEventListener('progress', (event) => {
    const { torrents: list } = JSON.parse(event.data);
    replaceAll(list);
    for (const torrent of list) details.changed(torrent.info_hash);
  });
  for (const kind of LIFECYCLE_EVENTS) {
    events.addEventListener(kind, (event) => {
      const data = JSON.parse(event.data);
      update(data);
      renderTotals();
      details.changed(data.info_hash);
    });
  }
  events.addEventListener('removed', (event) => forget(JSON.parse(event.data).info_hash));
  return events;
}

async function start() {
  details = new Details($('#details'), report);
  $('#add-file').addEventListener('submit', addFile);
  $('#add-magnet').addEventListener('submit', addMagnet);
  $('#session-limits').addEventListener('submit', setSessionLimits);
  $('#logout').addEventListener('click', logout);
  try {
    const [list, session] = await Promise.all([api.torrents(), api.session()]);
    replaceAll(list.torrents);
    showSession(session);
  } catch (error) {
    report(error.message, true);
  }
  connectEvents();
}

start();
