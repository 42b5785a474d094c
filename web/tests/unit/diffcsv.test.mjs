// Version diff rows and bulk-import parsing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lineDiff } from '../../src/lib/diff.js';
import { parseTargets } from '../../src/lib/csv.js';

test('a line diff pairs changes and keeps common lines', () => {
  const rows = lineDiff('a\nb\nc\nd', 'a\nB\nc\nd\ne');
  assert.deepEqual(rows.map((r) => r.kind), ['same', 'changed', 'same', 'same', 'added']);
  assert.deepEqual(rows[1], { left: 'b', right: 'B', kind: 'changed' });
  assert.deepEqual(lineDiff('x\ny', 'y').map((r) => r.kind), ['removed', 'same']);
});

test('CSV rows become target bodies with labels and numbers', () => {
  const { items, errors } = parseTargets('name,address,port,labels,transport\nweb-1,10.0.0.1,2222,"env=prod;role=web",ssh\n"db, main",db.local,,role=db,ssh\nbad,row');
  assert.deepEqual(items[0], { name: 'web-1', address: '10.0.0.1', port: 2222, labels: { env: 'prod', role: 'web' }, transport: 'ssh' });
  assert.deepEqual(items[1], { name: 'db, main', address: 'db.local', labels: { role: 'db' }, transport: 'ssh' });
  assert.deepEqual(errors, ['line 4: 2 fields, the header has 5']);
});

test('JSON is taken as is, and errors are named', () => {
  assert.deepEqual(parseTargets('[{"name":"a"}]').items, [{ name: 'a' }]);
  assert.match(parseTargets('[{"name":').errors[0], /invalid JSON/);
  assert.deepEqual(parseTargets('  ').errors, ['nothing to import']);
});
