// router.js - a small history router: the current location as a signal, links that do not
// reload, and route patterns with :params.
import { signal } from '@preact/signals';

export const loc = signal(location.pathname + location.search);

export function navigate(to, { replace = false } = {}) {
  if (to === loc.value) return;
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  loc.value = to;
  window.scrollTo(0, 0);
}

addEventListener('popstate', () => {
  loc.value = location.pathname + location.search;
});

/** {params} when `pattern` ("/runs/:id") matches the path of `url`, else null. */
export function match(pattern, url) {
  const path = url.split('?')[0].replace(/\/+$/, '') || '/';
  const p = pattern.split('/');
  const u = path.split('/');
  if (p.length !== u.length) return null;
  const params = {};
  for (let i = 0; i < p.length; i++) {
    if (p[i].startsWith(':')) params[p[i].slice(1)] = decodeURIComponent(u[i]);
    else if (p[i] !== u[i]) return null;
  }
  return params;
}

export function query(url = loc.value) {
  return new URLSearchParams(url.split('?')[1] || '');
}

/** A query string from an object, leaving out empty values. */
export function qs(obj) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(obj)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? '?' + s : '';
}

// Same-origin links navigate in place; modified clicks keep their browser meaning.
document.addEventListener('click', (e) => {
  const a = e.target.closest && e.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download') || e.defaultPrevented || e.button !== 0) return;
  if (e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const href = a.getAttribute('href');
  if (!href.startsWith('/') || href.startsWith('//') || href.startsWith('/api/')) return;
  e.preventDefault();
  navigate(href);
});
