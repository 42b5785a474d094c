// csv.js - targets for bulk import from pasted CSV (header row; quoted fields; labels as
// "k=v;k2=v2") or JSON (an array of target bodies). Pure: unit-tested.

function splitRow(line) {
  const out = [];
  let cur = '';
  let q = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (q) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') q = false;
      else cur += c;
    } else if (c === '"') q = true;
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out.map((s) => s.trim());
}

const NUMERIC = new Set(['port', 'connect_timeout_s', 'command_timeout_s']);

/** Target bodies from text: {items, errors: [line messages]}. */
export function parseTargets(text) {
  const t = text.trim();
  if (!t) return { items: [], errors: ['nothing to import'] };
  if (t[0] === '[' || t[0] === '{') {
    try {
      const v = JSON.parse(t);
      const items = Array.isArray(v) ? v : [v];
      return { items, errors: items.every((x) => x && typeof x === 'object') ? [] : ['every item must be an object'] };
    } catch (e) {
      return { items: [], errors: ['invalid JSON: ' + e.message] };
    }
  }
  const lines = t.split(/\r?\n/).filter((l) => l.trim());
  const head = splitRow(lines[0]);
  const items = [];
  const errors = [];
  lines.slice(1).forEach((line, n) => {
    const cells = splitRow(line);
    if (cells.length !== head.length) {
      errors.push(`line ${n + 2}: ${cells.length} fields, the header has ${head.length}`);
      return;
    }
    const item = {};
    head.forEach((h, i) => {
      const v = cells[i];
      if (v === '') return;
      if (h === 'labels') {
        item.labels = {};
        for (const kv of v.split(';')) {
          const k = kv.indexOf('=');
          if (k > 0) item.labels[kv.slice(0, k).trim()] = kv.slice(k + 1).trim();
        }
      } else if (NUMERIC.has(h)) item[h] = Number(v);
      else if (h === 'enabled') item[h] = v === 'true';
      else item[h] = v;
    });
    items.push(item);
  });
  return { items, errors };
}
