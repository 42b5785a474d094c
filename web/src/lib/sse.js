// sse.js - Server-Sent Events over fetch (EventSource cannot send the Authorization header):
// events parsed as they stream in, and after a network drop the stream is opened again with
// Last-Event-ID so nothing is lost or repeated.

// How streams authenticate: api.js plugs in its bearer header, refresh and end of session
// (kept out of this module's imports, so it runs on its own in node's tests).
let auth = { header: () => ({}), refresh: async () => false, over: () => {} };
export function setStreamAuth(a) {
  auth = a;
}

function parseBlock(block) {
  const ev = { event: 'message', data: '', id: null };
  const data = [];
  for (const line of block.split('\n')) {
    if (!line || line[0] === ':') continue;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
    if (field === 'data') data.push(value);
    else if (field === 'event') ev.event = value;
    else if (field === 'id') ev.id = value;
  }
  ev.data = data.join('\n');
  return data.length || ev.event !== 'message' ? ev : null;
}

/**
 * Open `path` (under /api/v1) as an event stream. onEvent({event, data, id}) for each event;
 * the stream ends for good on an "end" event, on close(), or on an HTTP error (onError).
 * Returns {close, lastId()}.
 */
export function stream(path, { onEvent, onError, onState, method = 'GET', lastId = null, retryMs = 1000 }) {
  let closed = false;
  let ctrl = null;
  let last = lastId;
  let retried401 = false;

  async function once() {
    ctrl = new AbortController();
    const headers = { Accept: 'text/event-stream', ...auth.header() };
    if (last) headers['Last-Event-ID'] = last;
    const res = await fetch('/api/v1' + path, { method, headers, signal: ctrl.signal, credentials: 'same-origin' });
    if (res.status === 401 && !retried401) {
      retried401 = true;
      if (await auth.refresh()) return 'again';
      auth.over();
      return 'done';
    }
    if (!res.ok) {
      let body = null;
      try {
        body = await res.json();
      } catch (e) {
        /* not JSON */
      }
      if (onError) onError(res.status, body);
      return 'done';
    }
    retried401 = false;
    if (onState) onState('open');
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return 'dropped';
      buf += dec.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
      // A catch-up read may hold thousands of events: handle them in slices of a few
      // milliseconds, yielding between slices, so no task blocks the page for long.
      let pos = 0;
      let i;
      let t0 = performance.now();
      while ((i = buf.indexOf('\n\n', pos)) >= 0) {
        const ev = parseBlock(buf.slice(pos, i));
        pos = i + 2;
        if (!ev) continue;
        if (ev.id) last = ev.id;
        onEvent(ev);
        if (ev.event === 'end' || ev.event === 'done') return 'done';
        if (performance.now() - t0 > 8) {
          await new Promise((ok) => setTimeout(ok, 0));
          if (closed) return 'done';
          t0 = performance.now();
        }
      }
      buf = buf.slice(pos);
    }
  }

  (async () => {
    while (!closed) {
      let r;
      try {
        r = await once();
      } catch (e) {
        r = closed ? 'done' : 'dropped';
      }
      if (r === 'done' || closed) break;
      if (r === 'dropped') {
        if (onState) onState('reconnecting');
        await new Promise((ok) => setTimeout(ok, retryMs));
      }
    }
    if (onState) onState('closed');
  })();

  return {
    close() {
      closed = true;
      if (ctrl) ctrl.abort();
    },
    lastId: () => last,
  };
}
