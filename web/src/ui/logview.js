// logview.js - a run's log: fed live from the run's event stream, kept whole in arrays, and
// rendered only where it is visible (fixed-height rows), so 100,000 lines stay scrollable.
// Incoming lines are batched per animation frame. Give it `version` (log.version) as a prop:
// @preact/signals skips components whose props did not change, and the store mutates in place.
// Incoming lines are batched per animation frame. ANSI colours through ansi_up, as classes
// (the page's CSP allows no inline style).
import { useEffect, useRef, useState } from 'preact/hooks';
import { AnsiUp } from 'ansi_up';
import { html } from './html.js';

const ROW = 18; // px, matches .log-row in styles.css
const OVERSCAN = 20;

const STYLE_CLASS = {
  'font-weight:bold': 'ansi-bold',
  'opacity:0.7': 'ansi-faint',
  'font-style:italic': 'ansi-italic',
  'text-decoration:underline': 'ansi-underline',
};

const ansi = new AnsiUp();
ansi.use_classes = true;
ansi.url_allowlist = {};

/** One line as HTML with classes only; ansi_up escapes the text. */
export function lineHtml(text) {
  if (text.indexOf('\x1b') < 0) return null; // plain text: rendered as text, no innerHTML
  return ansi.ansi_to_html(text).replace(/<span style="([^"]*)"( class="([^"]*)")?>/g, (m, styles, _c, classes) => {
    const extra = styles.split(';').map((s) => STYLE_CLASS[s]).filter(Boolean);
    const all = [classes, ...extra].filter(Boolean).join(' ');
    return all ? `<span class="${all}">` : '<span>';
  });
}

/** The log store: append records, filter by target and text, count. Kept outside state so that
 * 100k lines cost no re-render each; `version` bumps once per flushed frame. */
export function createLog() {
  return { lines: [], pending: [], idx: null, filter: { target: '', text: '' }, version: 0, seen: new Set() };
}

export function matches(log, line) {
  const f = log.filter;
  return (!f.target || line.t === f.target) && (!f.text || line.x.toLowerCase().includes(f.text));
}

export function setFilter(log, filter) {
  log.filter = { target: filter.target || '', text: (filter.text || '').toLowerCase() };
  if (!log.filter.target && !log.filter.text) log.idx = null;
  else {
    const idx = [];
    for (let i = 0; i < log.lines.length; i++) if (matches(log, log.lines[i])) idx.push(i);
    log.idx = idx;
  }
  log.version++;
}

/** Queue a log record {seq, target_id, step_id, stream, ts, text}; repeated seqs are ignored. */
export function pushRecord(log, rec, names) {
  if (rec.seq !== undefined) {
    if (log.seen.has(rec.seq)) return;
    log.seen.add(rec.seq);
  }
  const parts = String(rec.text || '').split('\n');
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  const t = rec.target_id || '';
  const name = names[t] || t.slice(0, 8);
  for (const x of parts) log.pending.push({ t, n: name, s: rec.stream, step: rec.step_id, ts: rec.ts, x });
}

function flush(log) {
  if (!log.pending.length) return false;
  const start = log.lines.length;
  for (const l of log.pending) log.lines.push(l);
  log.pending = [];
  if (log.idx) for (let i = start; i < log.lines.length; i++) if (matches(log, log.lines[i])) log.idx.push(i);
  log.version++;
  return true;
}

export function LogView({ log, follow, onFollow, interleaved }) {
  const box = useRef(null);
  const [, setTick] = useState(0);
  const [top, setTop] = useState(0);
  const [height, setHeight] = useState(480);
  useEffect(() => {
    let raf = 0;
    const loop = () => {
      if (flush(log)) setTick((t) => t + 1);
      raf = requestAnimationFrame(loop);
    };
    raf = requestAnimationFrame(loop);
    const ro = new ResizeObserver(() => box.current && setHeight(box.current.clientHeight));
    ro.observe(box.current);
    return () => {
      cancelAnimationFrame(raf);
      ro.disconnect();
    };
  }, [log]);
  const count = log.idx ? log.idx.length : log.lines.length;
  useEffect(() => {
    if (follow && box.current) box.current.scrollTop = count * ROW;
  });
  const onScroll = (e) => {
    const el = e.target;
    setTop(el.scrollTop);
    const atEnd = el.scrollTop + el.clientHeight >= el.scrollHeight - ROW * 2;
    if (follow !== atEnd) onFollow(atEnd);
  };
  const first = Math.max(0, Math.floor(top / ROW) - OVERSCAN);
  const last = Math.min(count, Math.ceil((top + height) / ROW) + OVERSCAN);
  const rows = [];
  for (let k = first; k < last; k++) {
    const i = log.idx ? log.idx[k] : k;
    const l = log.lines[i];
    const h = lineHtml(l.x);
    rows.push(html`<div key=${i} class=${'log-row s-' + l.s} role="listitem" style=${{ top: k * ROW + 'px' }}>
      ${interleaved ? html`<span class="log-target">${l.n}</span>` : ''}${h === null ? html`<span class="log-text">${l.x}</span>` : html`<span class="log-text" dangerouslySetInnerHTML=${{ __html: h }}></span>`}
    </div>`);
  }
  return html`<div class="log" ref=${box} onScroll=${onScroll} tabindex="0" role="region" aria-label=${`Log, ${count} lines`}>
    <div class="log-inner" role="list" style=${{ height: count * ROW + 'px' }}>${rows}</div>
    ${count === 0 ? html`<p class="log-empty muted">No log lines${log.filter.text || log.filter.target ? ' match' : ' yet'}.</p>` : ''}
  </div>`;
}
