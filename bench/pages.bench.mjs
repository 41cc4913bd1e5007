#!/usr/bin/env node
// The registry pages at scale (issue 24, SPEC v3 §11), on bench/registry.bench.mjs's synthetic
// registry (models × 1,000 versions; 100 models: 100,000 versions):
//   modelgate pages <out>: time and peak memory, each as a ratio to `list --json` of the same registry
//   a version page answered by `modelgate serve`: p99 latency under wrk ≤ 50 ms
// MODELGATE_BENCH_PAGES_MODELS sets the number of models (default 100). Run directly
// (`node bench/pages.bench.mjs`, after `npm run build`) or through bench/run.mjs.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { freePort } from './processes.mjs';
import { ensureRegistry } from './registry.bench.mjs';

const PROJECT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(PROJECT, 'dist/cli.js');
const NODE = existsSync(join(PROJECT, 'node_modules/.bin/node')) ? join(PROJECT, 'node_modules/.bin/node') : process.execPath;
const MODELS = Number(process.env.MODELGATE_BENCH_PAGES_MODELS ?? 100);
const VERSIONS = MODELS * 1000;
/** A version page's p99 under wrk (2 threads, 8 connections, 10 s). */
const P99_BUDGET_MS = 50;

/** Seconds and peak RSS (MiB, GNU time's %M) of one run of the CLI. */
function measured(cwd, args) {
  const start = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', NODE, CLI, ...args], { cwd, encoding: 'utf8', maxBuffer: 1 << 30 });
  const seconds = (performance.now() - start) / 1000;
  if (r.status !== 0) throw new Error(`modelgate ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(-500)}`);
  return { seconds, mib: Number(/(\d+)\s*$/.exec(r.stderr)?.[1]) / 1024, stdout: r.stdout };
}

/** Milliseconds from wrk's --latency distribution line (`99%  12.34ms`). */
function wrkPercentile(output, percent) {
  const m = new RegExp(`^\\s*${percent}%\\s+([0-9.]+)(us|ms|s)\\s*$`, 'm').exec(output);
  if (!m) throw new Error(`no ${percent}% line in wrk's output:\n${output}`);
  return Number(m[1]) * { us: 0.001, ms: 1, s: 1000 }[m[2]];
}

/** Measures every figure; returns rows for bench/run.mjs. */
export async function run({ log = () => {} } = {}) {
  if (!existsSync(CLI)) throw new Error('dist/cli.js is missing: run `npm run build` first');
  if (!existsSync('/usr/bin/time')) throw new Error('GNU time (/usr/bin/time) is missing');
  log(`preparing the synthetic registry of ${VERSIONS} versions (cached under .bench/) …`);
  const reg = ensureRegistry(MODELS);
  const rows = [];
  const out = join(tmpdir(), `modelgate-bench-pages-${process.pid}`);
  try {
    // Both cold: no catalog cache, as the template workflow's fresh checkout has none.
    const dropCache = () => rmSync(join(reg, '.git', 'modelgate'), { recursive: true, force: true });
    dropCache();
    const list = measured(reg, ['--json', 'list']);
    if (JSON.parse(list.stdout).length !== VERSIONS) throw new Error('list --json returned the wrong number of versions');
    dropCache();
    log(`list --json: ${list.seconds.toFixed(2)} s, ${Math.round(list.mib)} MiB; modelgate pages (${VERSIONS} versions) …`);
    const pages = measured(reg, ['--json', 'pages', out]);
    if (JSON.parse(pages.stdout).versions !== VERSIONS) throw new Error('pages wrote the wrong number of versions');
    log(`pages: ${pages.seconds.toFixed(2)} s, ${Math.round(pages.mib)} MiB`);
    rows.push({
      name: `pages <out> (${VERSIONS} versions), cold`,
      value: +pages.seconds.toFixed(3),
      unit: 's',
      baselineName: 'list --json, cold',
      baseline: +list.seconds.toFixed(3),
      target: 30,
      pass: pages.seconds / list.seconds <= 30,
    });
    rows.push({
      name: `pages <out> (${VERSIONS} versions): peak memory`,
      value: Math.round(pages.mib),
      unit: 'MiB',
      baselineName: 'list --json',
      baseline: Math.round(list.mib),
      target: 1.5,
      pass: pages.mib / list.mib <= 1.5,
    });
  } finally {
    rmSync(out, { recursive: true, force: true });
  }

  if (spawnSync('wrk', ['--version']).error) {
    rows.push({ name: 'serve: a version page p99 under wrk', skipped: 'wrk is not installed (apt-get install -y wrk)' });
    return rows;
  }
  const port = await freePort();
  const serve = spawn(NODE, [CLI, '--quiet', 'serve', '--listen', `127.0.0.1:${port}`], { cwd: reg, stdio: 'ignore' });
  try {
    const base = `http://127.0.0.1:${port}`;
    const url = `${base}/models/model-${String(Math.min(42, MODELS - 1)).padStart(3, '0')}/versions/997/`;
    for (let i = 0; i < 600; i++) {
      if (
        await fetch(`${base}/readyz`).then(
          (r) => r.ok,
          () => false,
        )
      )
        break;
      await sleep(100);
    }
    const first = await fetch(url);
    if (first.status !== 200 || !(await first.text()).includes('id="digest"')) throw new Error(`GET ${url} answered ${first.status}`);
    log('wrk on a version page …');
    const r = spawnSync('wrk', ['-t2', '-c8', '-d10s', '--latency', url], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr}`);
    if (/Non-2xx or 3xx responses/.test(r.stdout)) throw new Error(`wrk saw failed answers:\n${r.stdout}`);
    const p99 = wrkPercentile(r.stdout, 99);
    rows.push({
      name: `serve: a version page at ${VERSIONS} versions, p99 under wrk -t2 -c8`,
      value: +p99.toFixed(2),
      unit: 'ms',
      target: P99_BUDGET_MS,
      pass: p99 <= P99_BUDGET_MS,
    });
  } finally {
    serve.kill('SIGTERM');
  }
  return rows;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const rows = await run({ log: (m) => console.error(m) });
  for (const r of rows) console.log(JSON.stringify(r));
  process.exitCode = rows.every((r) => r.pass) ? 0 : 1;
}
