#!/usr/bin/env node
// Remote reads (issue 12, item 4): `show <m>@production --registry <git-url>` on the synthetic
// registry of 100 models × 1,000 versions served by `git http-backend`, read in-process with
// isomorphic-git, cold (empty cache folder) and warm (the cache holds the tip, nothing changed),
// against what a serving image would do without modelgate's remote reads:
// `git clone --depth 1 --filter=blob:none` and a local `show`.
// Run directly (`node bench/remote.bench.mjs`, after `npm run build`) or through bench/run.mjs.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { ensureRegistry } from './registry.bench.mjs';

const PROJECT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(PROJECT, 'dist/cli.js');
const NODE = existsSync(join(PROJECT, 'node_modules/.bin/node')) ? join(PROJECT, 'node_modules/.bin/node') : process.execPath;
const BIG = Number(process.env.MODELGATE_BENCH_MODELS ?? 100);

/** Seconds of one process run; asynchronous, since the git server answers from this process. */
function timed(cmd, args, opts = {}) {
  return new Promise((resolvePromise, reject) => {
    const start = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => {
      const seconds = (performance.now() - start) / 1000;
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.slice(0, 400)}`));
      else resolvePromise({ seconds, stdout });
    });
  });
}

/** The project's own git http-backend server (src/local/git-http-backend.ts), bundled for this run (serve.bench.mjs uses it too). */
export async function loadGitServer(work) {
  const out = join(work, 'git-http-backend.mjs');
  await build({
    entryPoints: [join(PROJECT, 'src/local/git-http-backend.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    outfile: out,
    logLevel: 'warning',
  });
  return import(pathToFileURL(out).href);
}

export async function run({ log = () => {} } = {}) {
  if (!existsSync(CLI)) throw new Error('dist/cli.js is missing: run `npm run build` first');
  const registry = ensureRegistry(BIG);
  const work = mkdtempSync(join(tmpdir(), 'mg-bench-remote-'));
  try {
    const served = join(work, 'srv');
    await timed('git', ['clone', '-q', '--bare', registry, join(served, 'registry.git')]);
    // Without it git's upload-pack ignores --filter and the baseline would be a full shallow clone.
    await timed('git', ['--git-dir', join(served, 'registry.git'), 'config', 'uploadpack.allowFilter', 'true']);
    const { serveGitHttp } = await loadGitServer(work);
    const server = await serveGitHttp(served);
    const url = `${server.url}/registry.git`;
    const rows = [];
    const ratioRow = (name, value, baselineName, baseline, target) =>
      rows.push({ name, value: +value.toFixed(3), unit: 's', baselineName, baseline: +baseline.toFixed(3), target, pass: value / baseline <= target });
    try {
      const expected = 1000 - 3;
      const env = { ...process.env, MODELGATE_CACHE: join(work, 'cache') };
      const show = (extra = []) => timed(NODE, [CLI, '--json', 'show', 'model-042@production', ...extra], { cwd: work, env });
      const check = (r) => {
        if (JSON.parse(r.stdout).version !== expected) throw new Error('show returned the wrong version');
        return r.seconds;
      };

      log('baseline: git clone --depth 1 --filter=blob:none + local show …');
      const clones = [];
      // One run: on 2 shared cores the clone alone takes minutes.
      for (let i = 0; i < 1; i++) {
        const dir = join(work, `clone-${i}`);
        const clone = await timed('git', ['clone', '-q', '--depth', '1', '--filter=blob:none', '--single-branch', url, dir]);
        const local = check(await timed(NODE, [CLI, '--json', 'show', 'model-042@production'], { cwd: dir }));
        clones.push(clone.seconds + local);
        rmSync(dir, { recursive: true, force: true });
      }
      const baseline = Math.min(...clones);

      log('modelgate show --registry <url>, cold …');
      const cold = check(await show(['--registry', url]));
      const warm = [];
      for (let i = 0; i < 3; i++) warm.push(check(await show(['--registry', url])));
      warm.sort((a, b) => a - b);
      ratioRow(`show <m>@production --registry <url>, cold (${BIG * 1000} versions)`, cold, 'git clone --depth 1 --filter=blob:none + show', baseline, 1.5);
      ratioRow('show <m>@production --registry <url>, warm (nothing changed)', warm[1], 'git clone --depth 1 --filter=blob:none + show', baseline, 1);
    } finally {
      await server.close();
    }
    return rows;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const rows = await run({ log: (m) => console.error(m) });
  for (const r of rows)
    console.log(
      `${r.name}: ${r.value} s vs ${r.baseline} s (${r.baselineName}) = ${(r.value / r.baseline).toFixed(2)}× (target ≤ ${r.target}×) ${r.pass ? 'pass' : 'MISS'}`,
    );
}
