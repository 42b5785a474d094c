// schemaform.js - JSON Schema (a step's params_schema) to form fields, and form values back to
// the params object the API takes. Pure: no DOM, unit-tested with node's test runner.
//
// A field: {name, label, kind, required, description, default, enum, min, max, minLength,
// maxLength, pattern, itemKind}. Kinds: 'string' (one line), 'text' (several lines: long or
// script-like strings), 'integer', 'number', 'boolean', 'enum', 'list' (array of scalars, one a
// line), 'map' (object of strings, KEY=value a line), 'json' (anything else, edited as JSON).

const TEXT_NAMES = /^(script|content|body|template|command|text|data)$/;

function scalarKind(s) {
  if (!s || typeof s !== 'object') return 'json';
  if (Array.isArray(s.enum) && s.enum.length) return 'enum';
  const t = Array.isArray(s.type) ? s.type.find((x) => x !== 'null') : s.type;
  if (t === 'integer' || t === 'number' || t === 'boolean') return t;
  if (t === 'string') return 'string';
  return 'json';
}

function kindOf(name, s) {
  const k = scalarKind(s);
  if (k === 'string' && (TEXT_NAMES.test(name) || (s.maxLength || 0) > 1000)) return 'text';
  if (k !== 'json') return k;
  const t = Array.isArray(s.type) ? s.type.find((x) => x !== 'null') : s.type;
  if (t === 'array') {
    const ik = scalarKind(s.items);
    return ik === 'string' || ik === 'integer' || ik === 'number' ? 'list' : 'json';
  }
  if (t === 'object' && !s.properties && scalarKind(s.additionalProperties) === 'string') return 'map';
  return 'json';
}

function labelOf(name) {
  const words = name.replace(/_/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** The fields of an object schema, required ones first, each in schema order. */
export function fieldsFor(schema) {
  const props = (schema && schema.properties) || {};
  const required = new Set((schema && schema.required) || []);
  const fields = Object.keys(props).map((name) => {
    const s = props[name] || {};
    const kind = kindOf(name, s);
    const f = { name, label: labelOf(name), kind, required: required.has(name), description: s.description || '' };
    if (s.default !== undefined) f.default = s.default;
    if (kind === 'enum') f.enum = s.enum.slice();
    for (const k of ['minimum', 'maximum', 'minLength', 'maxLength', 'pattern']) if (s[k] !== undefined) f[k] = s[k];
    if (kind === 'list') f.itemKind = scalarKind(s.items);
    return f;
  });
  return fields.filter((f) => f.required).concat(fields.filter((f) => !f.required));
}

/** Form text for each field from a params object (or the schema's defaults when absent). */
export function toForm(fields, params) {
  const out = {};
  for (const f of fields) {
    const has = params && Object.prototype.hasOwnProperty.call(params, f.name);
    const v = has ? params[f.name] : undefined;
    if (f.kind === 'boolean') out[f.name] = v === undefined ? (f.default === true ? 'true' : f.default === false ? 'false' : '') : String(v);
    else if (v === undefined || v === null) out[f.name] = '';
    else if (f.kind === 'list') out[f.name] = v.map(String).join('\n');
    else if (f.kind === 'map') out[f.name] = Object.entries(v).map(([k, x]) => `${k}=${x}`).join('\n');
    else if (f.kind === 'json') out[f.name] = JSON.stringify(v, null, 2);
    else out[f.name] = String(v);
  }
  return out;
}

// A template placeholder is accepted where a number or boolean goes: the server renders it.
const TEMPLATE = /\{\{.*\}\}/s;

function parseOne(f, text) {
  const t = text.trim();
  switch (f.kind) {
    case 'integer':
    case 'number': {
      if (TEMPLATE.test(t)) return { value: t };
      const n = Number(t);
      if (t === '' || Number.isNaN(n)) return { error: 'must be a number' };
      if (f.kind === 'integer' && !Number.isInteger(n)) return { error: 'must be a whole number' };
      if (f.minimum !== undefined && n < f.minimum) return { error: `must be at least ${f.minimum}` };
      if (f.maximum !== undefined && n > f.maximum) return { error: `must be at most ${f.maximum}` };
      return { value: n };
    }
    case 'boolean':
      return t === 'true' ? { value: true } : t === 'false' ? { value: false } : { error: 'must be true or false' };
    case 'enum':
      return f.enum.map(String).includes(t) ? { value: f.enum.find((e) => String(e) === t) } : { error: 'must be one of ' + f.enum.join(', ') };
    case 'list': {
      const items = text.split('\n').map((s) => s.trim()).filter(Boolean);
      if (f.itemKind === 'integer' || f.itemKind === 'number') {
        const nums = items.map(Number);
        if (nums.some((n) => Number.isNaN(n))) return { error: 'every line must be a number' };
        return { value: nums };
      }
      return { value: items };
    }
    case 'map': {
      const obj = {};
      for (const line of text.split('\n').map((s) => s.trim()).filter(Boolean)) {
        const i = line.indexOf('=');
        if (i < 1) return { error: `"${line}" is not KEY=value` };
        obj[line.slice(0, i).trim()] = line.slice(i + 1);
      }
      return { value: obj };
    }
    case 'json':
      try {
        return { value: JSON.parse(text) };
      } catch (e) {
        return { error: 'is not valid JSON' };
      }
    default: {
      // string / text: kept as typed (leading spaces may matter in a script)
      if (f.minLength !== undefined && text.length < f.minLength) return { error: f.minLength === 1 ? 'must not be empty' : `needs at least ${f.minLength} characters` };
      if (f.maxLength !== undefined && text.length > f.maxLength) return { error: `is longer than ${f.maxLength} characters` };
      if (f.pattern && !TEMPLATE.test(text) && !new RegExp(f.pattern, 'u').test(text)) return { error: `must match ${f.pattern}` };
      return { value: text };
    }
  }
}

/** Form text back to params: {params, errors: {name: message}}. Empty optional fields are left
 * out (the server applies the schema's default); an empty required field is an error. */
export function fromForm(fields, form) {
  const params = {};
  const errors = {};
  for (const f of fields) {
    const text = form[f.name] === undefined ? '' : String(form[f.name]);
    if (text.trim() === '' && f.kind !== 'text' && f.kind !== 'string') {
      if (f.required) errors[f.name] = 'is required';
      continue;
    }
    if (text === '') {
      if (f.required) errors[f.name] = 'is required';
      continue;
    }
    const r = parseOne(f, text);
    if (r.error) errors[f.name] = r.error;
    else params[f.name] = r.value;
  }
  return { params, errors };
}

/** Map the API's 400 details ({errors: [{step, field, message, path}]}) to {stepId: {field:
 * message}}, where field is a params key ("command"), or a step attribute ("timeout_s", "when",
 * "id", "type"); errors naming no step go under "" with their path. */
export function errorsByStep(details) {
  const out = {};
  const list = (details && details.errors) || [];
  for (const e of list) {
    const step = e.step || '';
    let field = e.field || e.path || '';
    if (field.startsWith('params.')) field = field.slice(7).split('.')[0];
    else if (!step && e.path) field = e.path;
    out[step] = out[step] || {};
    out[step][field] = out[step][field] ? out[step][field] + '; ' + e.message : e.message;
  }
  return out;
}
