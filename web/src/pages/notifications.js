// notifications.js - the notifications page: channels, rules, the delivery history and inbound
// hooks, one tab each (the tab in the URL).
import { html } from '../ui/html.js';
import { TabPage } from '../ui/tabs.js';
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

export function Notifications({ tab }) {
  return html`<${TabPage} title="Notifications" sub="Who hears about what, and what arrived" base="/notifications" tabs=${TABS} tab=${tab} />`;
}
