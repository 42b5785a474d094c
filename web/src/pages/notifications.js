// notifications.js - the notifications page: channels, rules, the delivery history and inbound
// hooks, one tab each (the tab in the URL).
import { html } from '../ui/html.js';
import { PageHead } from '../ui/components.js';
import { Channels } from './notify_channels.js';
import { Rules } from './notify_rules.js';
import { Deliveries } from './notify_history.js';
import { Hooks } from './notify_hooks.js';

const TABS = [
  ['channels', 'Channels', Channels],
  ['rules', 'Rules', Rules],
  ['deliveries', 'Deliveries', Deliveries],
  ['hooks', 'Inbound hooks', Hooks],
];

export function Notifications({ tab = 'channels' }) {
  const cur = TABS.find(([t]) => t === tab) || TABS[0];
  const C = cur[2];
  return html`<div>
    <${PageHead} title="Notifications" sub="Who hears about what, and what arrived" />
    <nav class="tabs" aria-label="Notifications">${TABS.map(([t, label]) => html`<a key=${t} href=${'/notifications/' + t} aria-current=${t === cur[0] ? 'page' : undefined}>${label}</a>`)}</nav>
    <${C} key=${cur[0]} />
  </div>`;
}
