// Building elements from untrusted text: torrent names, file paths and peer
// clients come from other people, so they only ever become textContent.

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === 'class') node.className = value;
    else if (name === 'dataset') Object.assign(node.dataset, value);
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

export function progressBar(fraction, label) {
  const bar = el('div', { class: 'bar' }, el('div', { class: 'fill' }));
  const text = el('span', { class: 'progress-text' });
  const box = el('div', { class: 'progressbox' }, bar, text);
  setProgress(box, fraction, label);
  return box;
}

export function setProgress(box, fraction, label) {
  const value = Math.max(0, Math.min(1, fraction || 0));
  box.querySelector('.fill').style.width = `${(value * 100).toFixed(2)}%`;
  box.querySelector('.progress-text').textContent = label;
  box.setAttribute('role', 'progressbar');
  box.setAttribute('aria-valuenow', String(Math.round(value * 1000) / 10));
}

export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

export function replaceRows(tbody, rows) {
  tbody.replaceChildren(...rows);
}
