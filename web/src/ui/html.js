// html.js - htm bound to Preact: the templates of every component (no JSX, no build-time
// transform).
import { h } from 'preact';
import htm from 'htm';

export const html = htm.bind(h);
