// build.mjs - build the web UI into the build tree: npm ci (when the lock file changed),
// esbuild (bundle, minify, hashed names), index.html, precompressed .gz copies, a depfile.
//
// Usage: node build.mjs SRCDIR OUTDIR [NPM]
//   SRCDIR  this folder (web/ of the source tree)
//   OUTDIR  its build folder: node_modules/ lands here, the UI in OUTDIR/web/
// Runs with node 18 or later; nothing is written to the source tree.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import zlib from 'node:zlib';

const [srcdir, outdir, npm = 'npm'] = process.argv.slice(2).map((p, i) => (i < 2 ? path.resolve(p) : p));
if (!srcdir || !outdir) {
  console.error('usage: node build.mjs SRCDIR OUTDIR [NPM]');
  process.exit(2);
}
const BUDGET_GZ = 150 * 1024; // the budget for the whole bundle, gzipped

function sha256(file) {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

// npm ci wipes node_modules: run it only when package-lock.json (or node's major) changed.
function installDeps() {
  const lock = path.join(srcdir, 'package-lock.json');
  const stamp = path.join(outdir, 'node_modules', '.opsc-lock');
  const want = sha256(lock) + ' node' + process.versions.node.split('.')[0];
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === want) return;
  fs.mkdirSync(outdir, { recursive: true });
  for (const f of ['package.json', 'package-lock.json']) fs.copyFileSync(path.join(srcdir, f), path.join(outdir, f));
  const env = { ...process.env, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: '1' };
  execFileSync(npm, ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: outdir, stdio: 'inherit', env });
  fs.writeFileSync(stamp, want);
}

function gzipAll(dir) {
  let raw = 0;
  let gz = 0;
  for (const ent of fs.readdirSync(dir, { withFileTypes: true, recursive: false })) {
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) {
      const sub = gzipAll(p);
      raw += sub.raw;
      gz += sub.gz;
    } else if (/\.(js|css|html|svg|txt|json)$/.test(ent.name)) {
      const data = fs.readFileSync(p);
      const packed = zlib.gzipSync(data, { level: 9 });
      raw += data.length;
      if (packed.length < data.length) {
        fs.writeFileSync(p + '.gz', packed);
        gz += packed.length;
      } else {
        gz += data.length;
      }
    }
  }
  return { raw, gz };
}

function copyDir(from, to) {
  if (!fs.existsSync(from)) return [];
  fs.mkdirSync(to, { recursive: true });
  const copied = [];
  for (const ent of fs.readdirSync(from, { withFileTypes: true })) {
    if (ent.isFile()) {
      fs.copyFileSync(path.join(from, ent.name), path.join(to, ent.name));
      copied.push(path.join(from, ent.name));
    }
  }
  return copied;
}

async function main() {
  installDeps();
  const require = createRequire(path.join(outdir, 'node_modules', 'x.js'));
  const esbuild = require('esbuild');
  const stage = path.join(outdir, 'web.tmp');
  const final = path.join(outdir, 'web');
  fs.rmSync(stage, { recursive: true, force: true });
  const result = await esbuild.build({
    entryPoints: { app: path.join(srcdir, 'src', 'main.js') },
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['chrome100', 'firefox100', 'safari15'],
    entryNames: 'assets/[name]-[hash]',
    assetNames: 'assets/[name]-[hash]',
    outdir: stage,
    nodePaths: [path.join(outdir, 'node_modules')],
    metafile: true,
    legalComments: 'linked',
    logLevel: 'warning',
  });
  const outputs = Object.keys(result.metafile.outputs).map((p) => path.relative(stage, path.resolve(p)));
  const js = outputs.find((p) => /^assets\/app-[A-Z0-9]+\.js$/.test(p));
  const css = outputs.find((p) => /^assets\/app-[A-Z0-9]+\.css$/.test(p));
  const template = path.join(srcdir, 'src', 'index.html');
  const html = fs
    .readFileSync(template, 'utf8')
    .replace('%APP_JS%', '/' + js)
    .replace('%APP_CSS%', '/' + css);
  fs.writeFileSync(path.join(stage, 'index.html'), html);
  const statics = copyDir(path.join(srcdir, 'public'), stage);
  const size = gzipAll(stage);
  fs.rmSync(final, { recursive: true, force: true });
  fs.renameSync(stage, final);

  // The depfile names every source esbuild read, so ninja rebuilds on any edit.
  const inputs = Object.keys(result.metafile.inputs)
    .map((p) => path.resolve(p))
    .filter((p) => !p.includes(`${path.sep}node_modules${path.sep}`));
  const deps = [...inputs, template, ...statics, path.join(srcdir, 'build.mjs')];
  const esc = (p) => p.replace(/ /g, '\\ ');
  fs.writeFileSync(path.join(outdir, 'web.d'), `${esc(final)}: ${deps.map(esc).join(' ')}\n`);
  console.log(`web UI: ${(size.raw / 1024).toFixed(0)} kB, ${(size.gz / 1024).toFixed(1)} kB gzipped (budget ${BUDGET_GZ / 1024} kB)`);
  if (size.gz > BUDGET_GZ) {
    console.error(`web UI: over budget: ${size.gz} bytes gzipped > ${BUDGET_GZ}`);
    process.exit(1);
  }
}

main().catch((e) => {
  console.error(e.message || e);
  process.exit(1);
});
