// main.js - the UI's entry: styles, session resume, the shell (navigation by role) and the
// routes. Notifications and discovery show in the navigation when the daemon's OpenAPI document
// has their APIs (NAV in app.js).
import './styles.css';
import { render } from 'preact';
import { html } from './ui/html.js';
import { App } from './app.js';
import { resume } from './lib/api.js';

resume().finally(() => render(html`<${App} />`, document.getElementById('app')));
