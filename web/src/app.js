// app.js - the shell: header with the navigation a role may use, the route table, login.
import { useEffect, useState } from 'preact/hooks';
import { html } from './ui/html.js';
import { Btn, Input, Toasts } from './ui/components.js';
import { can, get, login, logout, session, sessionNote } from './lib/api.js';
import { loc, match, navigate, query } from './lib/router.js';
import { Dashboard } from './pages/dashboard.js';
import { Targets, TargetPage } from './pages/targets.js';
import { Groups, GroupPage } from './pages/groups.js';
import { Credentials } from './pages/credentials.js';
import { Jobs } from './pages/jobs.js';
import { Builder } from './pages/builder.js';
import { Runs } from './pages/runs.js';
import { RunPage } from './pages/run.js';
import { Schedules, SchedulePage } from './pages/schedules.js';
import { Admin } from './pages/admin.js';
import { Notifications } from './pages/notifications.js';
import { Discovery, ScanPage } from './pages/discovery.js';

// Navigation entries; `api` names a path that must exist in the OpenAPI document for the
// entry to show (how notification and discovery pages appear once their APIs land).
export const NAV = [
  { href: '/', label: 'Dashboard' },
  { href: '/targets', label: 'Targets' },
  { href: '/groups', label: 'Groups' },
  { href: '/credentials', label: 'Credentials' },
  { href: '/jobs', label: 'Jobs' },
  { href: '/runs', label: 'Runs' },
  { href: '/schedules', label: 'Schedules' },
  { href: '/notifications', label: 'Notifications', api: '/api/v1/notifications/channels' },
  { href: '/discovery', label: 'Discovery', api: '/api/v1/discovery/scans' },
  { href: '/admin', label: 'Admin' },
];

export const ROUTES = [
  ['/', Dashboard],
  ['/targets', Targets],
  ['/targets/:id', TargetPage],
  ['/groups', Groups],
  ['/groups/:id', GroupPage],
  ['/credentials', Credentials],
  ['/jobs', Jobs],
  ['/jobs/new', Builder],
  ['/jobs/:id', Builder],
  ['/runs', Runs],
  ['/runs/:id', RunPage],
  ['/schedules', Schedules],
  ['/schedules/:id', SchedulePage],
  ['/admin', Admin],
  ['/admin/:tab', Admin],
  ['/notifications', Notifications],
  ['/notifications/:tab', Notifications],
  ['/discovery', Discovery],
  ['/discovery/scans/:id', ScanPage],
  ['/discovery/:tab', Discovery],
];

function Login() {
  const [u, setU] = useState('');
  const [p, setP] = useState('');
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState(false);
  const next = query().get('next');
  async function submit(e) {
    e.preventDefault();
    setBusy(true);
    setErr('');
    try {
      await login(u, p);
      navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/', { replace: true });
    } catch (x) {
      setErr(x.status === 401 ? 'Wrong username or password.' : x.message);
    } finally {
      setBusy(false);
    }
  }
  return html`<main class="login" id="main">
    <form class="card login-card" onSubmit=${submit} aria-labelledby="login-title">
      <div class="brand big"><span class="logo" aria-hidden="true"></span> OpsConductor</div>
      <h1 id="login-title">Log in</h1>
      ${sessionNote.value ? html`<p class="alert alert-info" role="status">${sessionNote.value}</p>` : ''}
      ${err ? html`<p class="alert alert-error" role="alert">${err}</p>` : ''}
      <${Input} label="Username" value=${u} onInput=${setU} autocomplete="username" required autofocus />
      <${Input} label="Password" type="password" value=${p} onInput=${setP} autocomplete="current-password" required />
      <button class="btn btn-primary wide" type="submit" disabled=${busy}>Log in</button>
      <p class="help">First start: user <code>admin</code>, password in <code>data/initial-admin-password</code>.</p>
    </form>
  </main>`;
}

let apiPaths = null;
function useApiPaths() {
  const [paths, setPaths] = useState(apiPaths);
  useEffect(() => {
    if (apiPaths) return;
    get('/openapi.json').then((d) => {
      apiPaths = new Set(Object.keys(d.paths || {}));
      setPaths(apiPaths);
    }, () => {});
  }, []);
  return paths;
}

function Shell({ children }) {
  const path = loc.value.split('?')[0];
  const paths = useApiPaths();
  const s = session.value;
  const items = NAV.filter((n) => !n.api || (paths && paths.has(n.api)));
  const [open, setOpen] = useState(false);
  const active = (href) => (href === '/' ? path === '/' : path === href || path.startsWith(href + '/'));
  return html`<div class="shell">
    <a class="skip" href="#main">Skip to content</a>
    <header class="top">
      <a class="brand" href="/"><span class="logo" aria-hidden="true"></span> OpsConductor</a>
      <button type="button" class="menu-toggle" aria-expanded=${open ? 'true' : 'false'} aria-controls="main-nav" onClick=${() => setOpen(!open)}>☰ Menu</button>
      <nav id="main-nav" aria-label="Main" class=${open ? 'open' : ''} onClick=${() => setOpen(false)}>
        ${items.map((n) => html`<a key=${n.href} href=${n.href} aria-current=${active(n.href) ? 'page' : undefined}>${n.label}</a>`)}
      </nav>
      <div class="user">
        <span class="muted">${s.user.display_name || s.user.username} · ${s.role}</span>
        <${Btn} kind="ghost" onClick=${logout}>Log out</${Btn}>
      </div>
    </header>
    <main id="main" tabindex="-1" data-path=${loc.value}>${children}</main>
  </div>`;
}

function NotFound() {
  return html`<div class="card"><h1>Not found</h1><p>No page at ${loc.value}. <a href="/">Dashboard</a></p></div>`;
}

export function App() {
  const url = loc.value;
  let page = null;
  if (url.startsWith('/login')) page = html`<${Login} />`;
  else if (!session.value) {
    // Not logged in (or the session ended): the login page, then back here.
    queueMicrotask(() => navigate('/login?next=' + encodeURIComponent(url), { replace: true }));
    page = html`<${Login} />`;
  } else {
    let found = null;
    for (const [pattern, C] of ROUTES) {
      const p = match(pattern, url);
      if (p && !(pattern === '/jobs/:id' && p.id === 'new')) {
        found = html`<${C} key=${pattern} ...${p} />`;
        break;
      }
    }
    page = html`<${Shell}>${found || html`<${NotFound} />`}</${Shell}>`;
  }
  useEffect(() => {
    const h = document.querySelector('h1');
    document.title = (h ? h.textContent + ' · ' : '') + 'OpsConductor';
  });
  return html`${page}<${Toasts} />`;
}

export { can };
