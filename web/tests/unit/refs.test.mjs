// Template reference autocompletion: what is offered where, and what choosing inserts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apply, completions, contextFor, referencedSteps } from '../../src/lib/refs.js';

const types = {
  'core.shell.command': { outputs_schema: { properties: { stdout: {}, changed: {} } } },
  'linux.facts.memory': { outputs_schema: { properties: { total_kb: {}, free_kb: {} } } },
};
const job = {
  parameters: [{ name: 'who' }, { name: 'when' }],
  steps: [
    { id: 'greet', type: 'core.shell.command' },
    { id: 'mem', type: 'linux.facts.memory' },
    { id: 'later', type: 'core.shell.command' },
  ],
};
const ctx = contextFor(job, 2, types); // the third step sees the first two

const labels = (r) => (r ? r.items.map((i) => i.label) : null);

test('nothing is offered outside a placeholder', () => {
  assert.equal(completions('echo hi', 7, ctx), null);
  assert.equal(completions('{{ params.who }} and ', 21, ctx), null);
});

test('roots, parameters, earlier steps and their declared outputs are offered', () => {
  assert.deepEqual(labels(completions('echo {{ ', 8, ctx)), ['params', 'steps', 'target', 'run', 'vars']);
  assert.deepEqual(labels(completions('echo {{ par', 11, ctx)), ['params']);
  assert.deepEqual(labels(completions('{{ params.', 10, ctx)), ['who', 'when']);
  assert.deepEqual(labels(completions('{{ params.wh', 12, ctx)), ['who', 'when']);
  assert.deepEqual(labels(completions('{{ params.who', 13, ctx)), ['who']);
  assert.deepEqual(labels(completions('{{ steps.', 9, ctx)), ['greet', 'mem']); // not itself, not later ones
  assert.deepEqual(labels(completions('{{ steps.mem.', 13, ctx)), ['outputs']);
  assert.deepEqual(labels(completions('{{ steps.mem.outputs.', 21, ctx)), ['total_kb', 'free_kb']);
  assert.deepEqual(labels(completions('{{ steps.nope.outputs.', 22, ctx)), null);
  assert.deepEqual(labels(completions('{{ steps.greet.outputs.stdout | up', 34, ctx)), ['upper']);
});

test('the first step has no earlier steps to refer to', () => {
  assert.equal(completions('{{ steps.', 9, contextFor(job, 0, types)), null);
});

test('choosing completes the segment, adds a dot inside a path and closes a finished reference', () => {
  let text = 'echo {{ st';
  let s = completions(text, text.length, ctx);
  let r = apply(text, s, s.items[0]);
  assert.equal(r.text, 'echo {{ steps.');
  s = completions(r.text, r.caret, ctx);
  r = apply(r.text, s, s.items.find((i) => i.label === 'mem'));
  assert.equal(r.text, 'echo {{ steps.mem.');
  s = completions(r.text, r.caret, ctx);
  r = apply(r.text, s, s.items[0]);
  s = completions(r.text, r.caret, ctx);
  r = apply(r.text, s, s.items.find((i) => i.label === 'free_kb'));
  assert.equal(r.text, 'echo {{ steps.mem.outputs.free_kb }}');
  assert.equal(r.caret, r.text.length);
  // Inside an existing placeholder the closing braces are not doubled.
  text = '{{ params.w }} x';
  s = completions(text, 11, ctx);
  r = apply(text, s, s.items.find((i) => i.label === 'who'));
  assert.equal(r.text, '{{ params.who }} x');
});

test('references to earlier steps are found in a text', () => {
  assert.deepEqual(referencedSteps('{{ steps.a.outputs.x }} {{steps.b-2.outputs.y}} steps.c'), ['a', 'b-2']);
});
