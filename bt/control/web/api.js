// The control API as the page uses it: same-origin requests carrying the session
// cookie, and the X-BT-Request header that the daemon requires of every
// cookie-authenticated request that changes something (its CSRF rule).

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function request(method, path, { json, body, contentType } = {}) {
  const headers = { 'X-BT-Request': '1', Accept: 'application/json' };
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (contentType) {
    headers['Content-Type'] = contentType;
  }
  const response = await fetch(path, {
    method, headers, body, credentials: 'same-origin', cache: 'no-store',
  });
  if (response.status === 401) {
    // Logged out elsewhere, or the daemon restarted: back to the log-in form.
    window.location.assign('/');
    throw new ApiError(401, 'not logged in');
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    throw new ApiError(response.status, `unexpected answer (${response.status})`);
  }
  if (!response.ok) {
    const message = data && data.error ? data.error.message : `HTTP ${response.status}`;
    throw new ApiError(response.status, message);
  }
  return data;
}

const torrentPath = (hash) => `/api/v1/torrents/${encodeURIComponent(hash)}`;

export const api = {
  session: () => request('GET', '/api/v1/session'),
  setSessionLimits: (limits) => request('PATCH', '/api/v1/session', { json: limits }),
  torrents: () => request('GET', '/api/v1/torrents'),
  torrent: (hash) => request('GET', torrentPath(hash)),
  peers: (hash) => request('GET', `${torrentPath(hash)}/peers`),
  trackers: (hash) => request('GET', `${torrentPath(hash)}/trackers`),
  patch: (hash, changes) => request('PATCH', torrentPath(hash), { json: changes }),
  pause: (hash) => request('POST', `${torrentPath(hash)}/pause`),
  resume: (hash) => request('POST', `${torrentPath(hash)}/resume`),
  recheck: (hash) => request('POST', `${torrentPath(hash)}/recheck`),
  remove: (hash, deleteData) =>
    request('DELETE', `${torrentPath(hash)}?delete_data=${deleteData ? 'true' : 'false'}`),
  upload: (file, paused) => request('POST', `/api/v1/torrents?paused=${paused}`, {
    body: file, contentType: 'application/x-bittorrent',
  }),
  addMagnet: (magnet, paused) => request('POST', '/api/v1/torrents', { json: { magnet, paused } }),
  logout: () => fetch('/logout', {
    method: 'POST', headers: { 'X-BT-Request': '1' }, credentials: 'same-origin',
  }),
};
