// tabs.js - a page of tabs whose tab is in the URL (/BASE/TAB): the notifications and
// discovery pages.
import { html } from './html.js';
import { PageHead } from './components.js';

/** `tabs`: [[slug, label, Component]]; an unknown `tab` shows the first. */
export function TabPage({ title, sub, base, tabs, tab }) {
  const cur = tabs.find(([t]) => t === tab) || tabs[0];
  const C = cur[2];
  return html`<div>
    <${PageHead} title=${title} sub=${sub} />
    <nav class="tabs" aria-label=${title}>${tabs.map(([t, label]) => html`<a key=${t} href=${base + '/' + t} aria-current=${t === cur[0] ? 'page' : undefined}>${label}</a>`)}</nav>
    <${C} key=${cur[0]} />
  </div>`;
}
