// main.js - the UI's entry: styles, session resume, the shell (navigation by role) and the
// routes. Pages for notifications and discovery plug in through NAV and ROUTES (app.js) once
// their APIs exist.
import './styles.css';
import { render } from 'preact';
import { html } from './ui/html.js';
import { App } from './app.js';
import { resume } from './lib/api.js';

resume().finally(() => render(html`<${App} />`, document.getElementById('app')));
