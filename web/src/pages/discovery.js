// discovery.js - the discovery page: scans, the host inventory and scan profiles, one tab each
// (the tab in the URL); one scan's live page is ScanPage.
import { html } from '../ui/html.js';
import { TabPage } from '../ui/tabs.js';
import { Scans, ScanPage } from './discovery_scans.js';
import { Inventory } from './discovery_hosts.js';
import { Profiles } from './discovery_profiles.js';

const TABS = [
  ['scans', 'Scans', Scans],
  ['hosts', 'Inventory', Inventory],
  ['profiles', 'Profiles', Profiles],
];

export function Discovery({ tab }) {
  return html`<${TabPage} title="Discovery" sub="Find the machines of a network and make them targets" base="/discovery" tabs=${TABS} tab=${tab} />`;
}

export { ScanPage };
