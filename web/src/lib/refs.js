// refs.js - autocompletion of template references ({{ params.x }}, {{ steps.id.outputs.k }},
// target..., run.id) for the job builder. Pure: no DOM, unit-tested with node's test runner.

export const FILTERS = ['default', 'upper', 'lower', 'trim', 'replace', 'join', 'split', 'length', 'first', 'last',
  'keys', 'string', 'int', 'json', 'b64encode', 'b64decode', 'basename', 'dirname', 'raw', 'args'];
const TARGET = ['name', 'address', 'port', 'os_family', 'labels', 'facts'];

/** The reference context of step number `index` of a job: its parameters and the steps before
 * it, with the output keys their step types declare. `types` maps a type to its descriptor
 * (with outputs_schema). */
export function contextFor(job, index, types) {
  const params = (job.parameters || []).map((p) => p.name).filter(Boolean);
  const steps = (job.steps || []).slice(0, index).filter((s) => s.id).map((s) => {
    const t = types[s.type];
    const props = (t && t.outputs_schema && t.outputs_schema.properties) || {};
    return { id: s.id, outputs: Object.keys(props), type: s.type };
  });
  return { params, steps };
}

// The open placeholder around the caret: the text from just after "{{" to the caret, when no
// "}}" closes it before the caret.
function openExpr(text, caret) {
  const before = text.slice(0, caret);
  const open = before.lastIndexOf('{{');
  if (open < 0 || before.indexOf('}}', open) >= 0) return null;
  return { start: open + 2, expr: before.slice(open + 2) };
}

function candidates(path, ctx) {
  const parts = path.split('.');
  const head = parts.slice(0, -1);
  if (head.length === 0) return [['params', 'job parameters'], ['steps', 'earlier steps'], ['target', 'the target'], ['run', 'the run'], ['vars', 'variables']];
  const [root, a, b] = head;
  if (root === 'params' && head.length === 1) return ctx.params.map((p) => [p, 'parameter']);
  if (root === 'steps' && head.length === 1) return ctx.steps.map((s) => [s.id, s.type]);
  if (root === 'steps' && head.length === 2 && ctx.steps.some((s) => s.id === a)) return [['outputs', 'step outputs']];
  if (root === 'steps' && head.length === 3 && b === 'outputs') {
    const s = ctx.steps.find((x) => x.id === a);
    return s ? s.outputs.map((o) => [o, 'output of ' + a]) : [];
  }
  if (root === 'target' && head.length === 1) return TARGET.map((t) => [t, 'target field']);
  if (root === 'run' && head.length === 1) return [['id', 'run id']];
  return [];
}

/** Suggestions at the caret: {from, to, items: [{label, insert, detail}]} or null outside a
 * placeholder. Replacing text[from, to) with an item's `insert` completes it. */
export function completions(text, caret, ctx) {
  const open = openExpr(text, caret);
  if (!open) return null;
  const expr = open.expr;
  const pipe = expr.lastIndexOf('|');
  if (pipe >= 0) {
    const word = expr.slice(pipe + 1).trimStart();
    if (!/^[a-z0-9_]*$/.test(word)) return null;
    const from = caret - word.length;
    const items = FILTERS.filter((f) => f.startsWith(word)).map((f) => ({ label: f, insert: f, detail: 'filter' }));
    return items.length ? { from, to: caret, items } : null;
  }
  const m = /[A-Za-z0-9_.\-]*$/.exec(expr);
  const path = m ? m[0] : '';
  const dot = path.lastIndexOf('.');
  const word = path.slice(dot + 1);
  const from = caret - word.length;
  const items = candidates(path, ctx)
    .filter(([name]) => name.startsWith(word))
    .map(([name, detail]) => ({ label: name, insert: name, detail }));
  return items.length ? { from, to: caret, items } : null;
}

/** Apply a chosen item: the new text and caret. A complete reference gets its closing "}}". */
export function apply(text, sug, item) {
  let insert = item.insert;
  const after = text.slice(sug.to);
  const path = (/[A-Za-z0-9_.\-]*$/.exec(text.slice(0, sug.from)) || [''])[0] + insert;
  const leaf = /^params\.[^.]+$|^steps\.[^.]+\.outputs\.[^.]+$|^run\.id$|^target\.(name|address|port|os_family)$/.test(path)
    || item.detail === 'filter';
  if (!leaf) insert += '.';
  else if (!/^\s*\}\}/.test(after)) insert += ' }}';
  const out = text.slice(0, sug.from) + insert + after;
  return { text: out, caret: sug.from + insert.length };
}

/** The references a text makes to earlier steps: ids of steps.<id>.outputs used. */
export function referencedSteps(text) {
  const out = new Set();
  const re = /steps\.([A-Za-z0-9_\-]+)\.outputs/g;
  let m;
  while ((m = re.exec(text || ''))) out.add(m[1]);
  return [...out];
}
