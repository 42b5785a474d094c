// The schema-to-form generator against the shapes the bundled step libraries use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorsByStep, fieldsFor, fromForm, toForm } from '../../src/lib/schemaform.js';

const shell = {
  type: 'object',
  additionalProperties: false,
  required: ['command'],
  properties: {
    shell: { type: 'string', minLength: 1, description: 'Run with this shell' },
    command: { type: 'string', minLength: 1, description: 'The command line' },
    env: { type: 'object', additionalProperties: { type: 'string' } },
    args: { type: 'array', items: { type: 'string' } },
    port: { type: 'integer', minimum: 1, maximum: 65535, default: 22 },
    timeout: { type: 'number' },
    follow: { type: 'boolean', default: true },
    method: { type: 'string', enum: ['GET', 'POST'], default: 'GET' },
    headers: { type: 'object', properties: { a: { type: 'string' } } },
    pattern: { type: 'string', pattern: '^\\.[a-z]+$' },
  },
};

test('fields come required first, typed from the schema, with descriptions and bounds', () => {
  const f = fieldsFor(shell);
  assert.deepEqual(f.map((x) => x.name), ['command', 'shell', 'env', 'args', 'port', 'timeout', 'follow', 'method', 'headers', 'pattern']);
  const by = Object.fromEntries(f.map((x) => [x.name, x]));
  assert.equal(by.command.kind, 'text'); // a command line gets a multi-line box
  assert.equal(by.command.required, true);
  assert.equal(by.command.description, 'The command line');
  assert.equal(by.shell.kind, 'string');
  assert.equal(by.env.kind, 'map');
  assert.equal(by.args.kind, 'list');
  assert.equal(by.port.kind, 'integer');
  assert.equal(by.port.maximum, 65535);
  assert.equal(by.port.default, 22);
  assert.equal(by.timeout.kind, 'number');
  assert.equal(by.follow.kind, 'boolean');
  assert.deepEqual(by.method.enum, ['GET', 'POST']);
  assert.equal(by.headers.kind, 'json');
  assert.equal(by.pattern.pattern, '^\\.[a-z]+$');
});

test('a params object round-trips through the form text', () => {
  const f = fieldsFor(shell);
  const params = { command: 'echo hi', env: { A: '1', B: 'x=y' }, args: ['-a', 'b c'], port: 2222, follow: false, method: 'POST', headers: { a: 'b' } };
  const form = toForm(f, params);
  assert.equal(form.env, 'A=1\nB=x=y');
  assert.equal(form.args, '-a\nb c');
  assert.equal(form.follow, 'false');
  const back = fromForm(f, form);
  assert.deepEqual(back.errors, {});
  assert.deepEqual(back.params, params);
});

test('defaults prefill the form and empty optional fields are left to the server', () => {
  const f = fieldsFor(shell);
  const form = toForm(f, {});
  assert.equal(form.follow, 'true');
  assert.equal(form.port, '');
  const { params, errors } = fromForm(f, { ...form, command: 'true', follow: '' });
  assert.deepEqual(errors, {});
  assert.deepEqual(params, { command: 'true' });
});

test('bad values are reported on their field', () => {
  const f = fieldsFor(shell);
  const { errors } = fromForm(f, { command: '', port: '70000', timeout: 'soon', method: 'PUT', env: 'novalue', headers: '{', pattern: 'x' });
  assert.equal(errors.command, 'is required');
  assert.equal(errors.port, 'must be at most 65535');
  assert.equal(errors.timeout, 'must be a number');
  assert.match(errors.method, /one of GET, POST/);
  assert.match(errors.env, /KEY=value/);
  assert.equal(errors.headers, 'is not valid JSON');
  assert.match(errors.pattern, /must match/);
  assert.equal(fromForm(f, { command: 'x', port: '2.5' }).errors.port, 'must be a whole number');
});

test('a template placeholder is accepted where a number goes', () => {
  const f = fieldsFor(shell);
  const { params, errors } = fromForm(f, { command: 'x', port: '{{ params.port }}' });
  assert.deepEqual(errors, {});
  assert.equal(params.port, '{{ params.port }}');
});

test("the API's 400 details land on the step and field they name", () => {
  const details = {
    errors: [
      { path: '/steps/0/params/command', message: 'is required', step: 'a', field: 'params.command' },
      { path: '/steps/1/timeout_s', message: 'must be >= 0', step: 'b', field: 'timeout_s' },
      { path: '/steps/0/params/command', message: "1:4: 'x' is undefined", step: 'a', field: 'params.command' },
      { path: '/parameters/0/name', message: 'is required' },
    ],
  };
  const e = errorsByStep(details);
  assert.equal(e.a.command, "is required; 1:4: 'x' is undefined");
  assert.equal(e.b.timeout_s, 'must be >= 0');
  assert.equal(e[''][ '/parameters/0/name'], 'is required');
});
