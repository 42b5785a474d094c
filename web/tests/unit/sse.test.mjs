// The UI's event-stream client against a real HTTP server on loopback that drops the
// connection mid-stream: it reconnects by itself with Last-Event-ID, loses and repeats nothing,
// and stops for good at "end".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';

const realFetch = globalThis.fetch;

function server(handler) {
  return new Promise((ok) => {
    const s = http.createServer(handler);
    s.listen(0, '127.0.0.1', () => ok(s));
  });
}

test('a dropped stream resumes after the last event id, and "end" ends it', async () => {
  const seen = [];
  const s = await server((req, res) => {
    seen.push(req.headers['last-event-id'] || null);
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    if (seen.length === 1) {
      res.write('id: 1\nevent: log\ndata: {"text":"one"}\n\n: keep-alive comment\n\nid: 2\nevent: log\ndata: {"text":"two"}\n\n');
      setTimeout(() => res.socket.destroy(), 50); // the network drops
    } else {
      res.write('id: 3\nevent: log\ndata: {"text":"three"}\n\n');
      res.end('event: end\ndata: {"state":"succeeded"}\n\n');
    }
  });
  const base = `http://127.0.0.1:${s.address().port}`;
  globalThis.fetch = (url, opts) => realFetch(base + url, opts);
  const { stream } = await import('../../src/lib/sse.js');
  const events = [];
  const states = [];
  await new Promise((done) => {
    stream('/runs/x/events', {
      retryMs: 20,
      onEvent: (ev) => events.push([ev.id, ev.event, ev.data]),
      onState: (st) => {
        states.push(st);
        if (st === 'closed') done();
      },
    });
  });
  s.close();
  globalThis.fetch = realFetch;
  assert.deepEqual(seen, [null, '2']);
  assert.deepEqual(events.map((e) => e[2]), ['{"text":"one"}', '{"text":"two"}', '{"text":"three"}', '{"state":"succeeded"}']);
  assert.deepEqual(states, ['open', 'reconnecting', 'open', 'closed']);
});

test('an HTTP error is reported once and not retried', async () => {
  let calls = 0;
  const s = await server((req, res) => {
    calls++;
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end('{"error":{"code":"not_found","message":"no run x"}}');
  });
  const base = `http://127.0.0.1:${s.address().port}`;
  globalThis.fetch = (url, opts) => realFetch(base + url, opts);
  const { stream } = await import('../../src/lib/sse.js');
  const errors = [];
  await new Promise((done) => {
    stream('/runs/x/events', { onEvent: () => {}, onError: (st, body) => errors.push([st, body.error.code]), onState: (st) => st === 'closed' && done() });
  });
  s.close();
  globalThis.fetch = realFetch;
  assert.equal(calls, 1);
  assert.deepEqual(errors, [[404, 'not_found']]);
});
