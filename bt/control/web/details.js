// One torrent's details: its files (priorities settable), peers, trackers and limits.

import { api } from './api.js';
import { el, progressBar } from './dom.js';
import { bytes, duration, limit, percent, rate } from './format.js';

const PRIORITIES = ['skip', 'normal', 'high'];
//: At most one refresh of the open details per this many ms, driven by progress events.
const REFRESH_MS = 2000;

export class Details {
  constructor(root, report) {
    this.root = root;
    this.report = report;
    this.hash = null;
    this.tab = 'files';
    this.lastRefresh = 0;
    this.pending = null;
    root.querySelector('#details-close').addEventListener('click', () => this.close());
    for (const button of root.querySelectorAll('[data-tab]')) {
      button.addEventListener('click', () => this.show(button.dataset.tab));
    }
    root.querySelector('#torrent-limits').addEventListener('submit', (event) => {
      event.preventDefault();
      this.setLimits();
    });
  }

  open(hash) {
    this.hash = hash;
    this.root.hidden = false;
    this.refresh(true);
  }

  close() {
    this.hash = null;
    this.root.hidden = true;
  }

  show(tab) {
    this.tab = tab;
    for (const button of this.root.querySelectorAll('[data-tab]')) {
      button.setAttribute('aria-selected', String(button.dataset.tab === tab));
    }
    for (const panel of this.root.querySelectorAll('.tab')) {
      panel.hidden = panel.id !== `tab-${tab}`;
    }
    this.refresh(true);
  }

  // Called on every progress event: refresh what is open, at most every REFRESH_MS.
  changed(hash) {
    if (hash !== this.hash) return;
    const wait = this.lastRefresh + REFRESH_MS - Date.now();
    if (wait <= 0) this.refresh(false);
    else if (!this.pending) this.pending = setTimeout(() => this.refresh(false), wait);
  }

  removed(hash) {
    if (hash === this.hash) this.close();
  }

  async refresh(force) {
    clearTimeout(this.pending);
    this.pending = null;
    this.lastRefresh = Date.now();
    const hash = this.hash;
    if (!hash) return;
    try {
      const torrent = await api.torrent(hash);
      if (hash !== this.hash) return;
      this.root.querySelector('#details-name').textContent = torrent.name;
      this.root.querySelector('#details-hash').textContent = torrent.info_hash;
      if (this.tab === 'files') this.files(torrent);
      else if (this.tab === 'peers') this.peers((await api.peers(hash)).peers);
      else if (this.tab === 'trackers') this.trackers((await api.trackers(hash)).trackers);
      else if (this.tab === 'options' && force) this.options(torrent);
    } catch (error) {
      if (error.status === 404) this.close();
      else this.report(error.message, true);
    }
  }

  files(torrent) {
    const tbody = this.root.querySelector('#tab-files tbody');
    const focused = document.activeElement && tbody.contains(document.activeElement);
    if (focused) return; // do not pull a select away from the user mid-choice
    tbody.replaceChildren(...torrent.files.map((file) => {
      const select = el('select', {
        'aria-label': `Priority of ${file.path}`,
        dataset: { index: String(file.index) },
        onchange: (event) => this.setPriority(file.index, event.target.value),
      }, ...PRIORITIES.map((p) => el('option', { value: p }, p)));
      select.value = file.priority;
      const fraction = file.size ? file.done / file.size : 1;
      return el('tr', { class: file.priority === 'skip' ? 'skipped' : '' },
        el('td', { class: 'path' }, file.path),
        el('td', { class: 'num' }, bytes(file.size)),
        el('td', { class: 'progress' }, progressBar(fraction, percent(fraction))),
        el('td', {}, select));
    }));
  }

  peers(peers) {
    fill(this.root.querySelector('#tab-peers tbody'), 6, 'No peers.', peers.map((peer) => el('tr', {},
      el('td', {}, peer.address),
      el('td', {}, peer.client),
      el('td', { class: 'num' }, percent(peer.progress)),
      el('td', { class: 'num' }, rate(peer.download_rate)),
      el('td', { class: 'num' }, rate(peer.upload_rate)),
      el('td', { title: flagsTitle(peer) }, flags(peer)))));
  }

  trackers(trackers) {
    fill(this.root.querySelector('#tab-trackers tbody'), 4, 'No trackers.', trackers.map((tracker) => el('tr', {},
      el('td', { class: 'path' }, tracker.url),
      el('td', { class: 'num' },
        tracker.last_announce_ago === null ? 'never' : `${duration(tracker.last_announce_ago)} ago`),
      el('td', { class: 'num' }, String(tracker.failures)),
      el('td', { class: 'num' }, String(tracker.errors)))));
  }

  options(torrent) {
    this.root.querySelector('#torrent-down').value = limit(torrent.download_limit);
    this.root.querySelector('#torrent-up').value = limit(torrent.upload_limit);
  }

  async setPriority(index, priority) {
    try {
      const torrent = await api.patch(this.hash, { file_priorities: { [index]: priority } });
      this.report(`File ${index}: ${priority}.`);
      if (document.activeElement) document.activeElement.blur();
      this.files(torrent);
    } catch (error) {
      this.report(error.message, true);
    }
  }

  async setLimits() {
    const down = this.root.querySelector('#torrent-down').value.trim();
    const up = this.root.querySelector('#torrent-up').value.trim();
    try {
      const torrent = await api.patch(this.hash, {
        download_limit: down || null, upload_limit: up || null,
      });
      this.options(torrent);
      this.report(`Limits of ${torrent.name} set.`);
    } catch (error) {
      this.report(error.message, true);
    }
  }
}

// The table's rows, or one row saying there are none.
function fill(tbody, columns, none, rows) {
  const empty = el('tr', {}, el('td', { colspan: String(columns), class: 'none' }, none));
  tbody.replaceChildren(...(rows.length ? rows : [empty]));
}

// As other clients show them: D/d we download (unchoked/choked while interested), U/u we upload.
function flags(peer) {
  let text = '';
  if (peer.am_interested) text += peer.peer_choking ? 'd' : 'D';
  if (peer.peer_interested) text += peer.am_choking ? 'u' : 'U';
  if (!peer.outgoing) text += 'I';
  return text;
}

function flagsTitle(peer) {
  return [
    peer.am_interested ? (peer.peer_choking ? 'we want data, choked' : 'downloading') : '',
    peer.peer_interested ? (peer.am_choking ? 'it wants data, we choke' : 'uploading') : '',
    peer.outgoing ? 'we dialled it' : 'it dialled us',
  ].filter(Boolean).join('; ');
}
