// discovery.js - the discovery page: scans, the host inventory and scan profiles, one tab each
// (the tab in the URL); one scan's live page is ScanPage.
import { html } from '../ui/html.js';
import { PageHead } from '../ui/components.js';
import { Scans, ScanPage } from './discovery_scans.js';
import { Inventory } from './discovery_hosts.js';
import { Profiles } from './discovery_profiles.js';

const TABS = [
  ['scans', 'Scans', Scans],
  ['hosts', 'Inventory', Inventory],
  ['profiles', 'Profiles', Profiles],
];

export function Discovery({ tab = 'scans' }) {
  const cur = TABS.find(([t]) => t === tab) || TABS[0];
  const C = cur[2];
  return html`<div>
    <${PageHead} title="Discovery" sub="Find the machines of a network and make them targets" />
    <nav class="tabs" aria-label="Discovery">${TABS.map(([t, label]) => html`<a key=${t} href=${'/discovery/' + t} aria-current=${t === cur[0] ? 'page' : undefined}>${label}</a>`)}</nav>
    <${C} key=${cur[0]} />
  </div>`;
}

export { ScanPage };
