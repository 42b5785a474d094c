// diff.js - a line diff (longest common subsequence) for side-by-side version comparison.
// Pure: unit-tested. Rows: {left, right, kind: 'same'|'changed'|'added'|'removed'}.

export function lineDiff(a, b) {
  const x = a.split('\n');
  const y = b.split('\n');
  const n = x.length;
  const m = y.length;
  // LCS lengths from the end; job documents are a few hundred lines at most.
  const L = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const rows = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) {
      rows.push({ left: x[i++], right: y[j++], kind: 'same' });
    } else if (i < n && (j >= m || L[i + 1][j] >= L[i][j + 1])) {
      rows.push({ left: x[i++], right: null, kind: 'removed' });
    } else {
      rows.push({ left: null, right: y[j++], kind: 'added' });
    }
  }
  // A removal followed by an addition reads best as one changed row.
  const out = [];
  for (let k = 0; k < rows.length; k++) {
    const r = rows[k];
    const next = rows[k + 1];
    if (r.kind === 'removed' && next && next.kind === 'added') {
      out.push({ left: r.left, right: next.right, kind: 'changed' });
      k++;
    } else out.push(r);
  }
  return out;
}
