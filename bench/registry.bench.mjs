#!/usr/bin/env node
// Read-side speed targets of the registry (foundation issue), measured as whole processes on a
// synthetic registry of 100 models × 1,000 versions (100,000 manifests):
//   show <m>@production ≤ 0.3 s, independent of registry size (compared with a 10-model registry)
//   list --stage Production ≤ 2 s cold (no modelgate cache), faster again when nothing changed
//   --help ≤ 0.25 s
//   resolve <m>@champion ≤ 1.2× resolve <m>@production (an alias resolves as fast as a stage)
// Run directly (`node bench/registry.bench.mjs`, after `npm run build`) or through bench/run.mjs,
// which calls run() and collects the rows. MODELGATE_BENCH_ROWS=show,history,stage (any of help,
// show, resolve, stage, history) measures only those rows; list --where and validate are in catalog.bench.mjs.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const PROJECT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(PROJECT, 'dist/cli.js');
const NODE = existsSync(join(PROJECT, 'node_modules/.bin/node')) ? join(PROJECT, 'node_modules/.bin/node') : process.execPath;
/** Bump when the generated registries change shape, so cached copies under .bench/ are rebuilt. */
const GENERATOR_VERSION = 3;
const VERSIONS_PER_MODEL = 1000;
/** Models in the large registry: MODELGATE_BENCH_MODELS=1000 measures the 1,000,000-version registry (issue 14), cached under .bench/. */
const BIG = Number(process.env.MODELGATE_BENCH_MODELS ?? 100);
const SMALL = 1;
/** The rows to measure (MODELGATE_BENCH_ROWS), all when unset. */
const ROWS = process.env.MODELGATE_BENCH_ROWS ? new Set(process.env.MODELGATE_BENCH_ROWS.split(',').map((r) => r.trim())) : undefined;
const want = (row) => !ROWS || ROWS.has(row);

const hex = (n, width) => n.toString(16).padStart(width, '0').slice(-width);
const sha = (seed) => hex(seed * 2654435761, 8).repeat(8);

function stageOf(v, last) {
  if (v === last) return 'None';
  if (v >= last - 2) return 'Staging';
  if (v === last - 3) return 'Production';
  return 'Archived';
}

function manifest(model, v, last) {
  const digest = sha(v * 7919 + model.length);
  // Every 97th version mentions "Production" elsewhere: the stage prefilter must not be fooled.
  const note = v % 97 === 0 ? '\n  note: "Production candidate, rejected"' : '';
  return `apiVersion: modelgate.dev/v1
kind: ModelVersion
model: ${model}
version: ${v}
stage: ${stageOf(v, last)}
createdAt: "2026-${String(1 + (v % 12)).padStart(2, '0')}-${String(1 + (v % 28)).padStart(2, '0')}T10:00:00Z"
createdBy: pipeline
description: Synthetic version ${v} of ${model}
artifact:
  uri: s3://ml-models/registry/${model}/sha256/${digest}/model.onnx
  sha256: "${digest}"
  size: ${1000 + v}
format: onnx
framework: {name: pytorch, version: 2.4.0}
metrics: {auc: ${(0.8 + (v % 200) / 1000).toFixed(3)}, precision: ${(0.7 + (v % 300) / 1000).toFixed(3)}, latency_p95_ms: ${20 + (v % 50)}}
parameters: {n_estimators: ${100 + (v % 10) * 10}, max_depth: ${5 + (v % 10)}}
lineage:
  code: {repository: https://github.com/acme/${model}, commit: "${sha(v).slice(0, 40)}"}
  data: [{id: txn-${2020 + (v % 5)}-v${v % 9}}]
annotations: {validation_status: passed${note.replace('\n  note', ', note')}}
`;
}

/**
 * A registry of `models` × VERSIONS_PER_MODEL in one commit, made with git fast-import; cached
 * under .bench/. Built in a private folder and renamed into place, so concurrent callers (other
 * benchmarks import this) never see or delete a half-built registry.
 */
export function ensureRegistry(models) {
  const dir = join(PROJECT, '.bench', `registry-g${GENERATOR_VERSION}-${models}x${VERSIONS_PER_MODEL}`);
  if (existsSync(join(dir, '.bench-ready'))) return dir;
  mkdirSync(join(PROJECT, '.bench'), { recursive: true });
  const work = `${dir}.building-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const git = (args, input) => {
    const r = spawnSync('git', args, { cwd: work, input, maxBuffer: 1 << 30, encoding: 'buffer' });
    if (r.status !== 0) throw new Error(`git ${args[0]} failed: ${String(r.stderr).slice(0, 500)}`);
  };
  git(['init', '--quiet', '-b', 'main']);
  const chunks = [];
  const file = (path, text) => {
    const body = Buffer.from(text);
    chunks.push(Buffer.from(`M 100644 inline ${path}\ndata ${body.length}\n`), body, Buffer.from('\n'));
  };
  const message = Buffer.from('Synthetic registry\n');
  chunks.push(Buffer.from(`commit refs/heads/main\ncommitter Bench <bench@example.com> 1767225600 +0000\ndata ${message.length}\n`), message);
  file('modelgate.yaml', 'apiVersion: modelgate.dev/v1\nkind: Registry\nstorage: {uri: s3://ml-models/registry}\n');
  for (let m = 0; m < models; m++) {
    const name = `model-${String(m).padStart(3, '0')}`;
    file(`models/${name}/model.yaml`, `apiVersion: modelgate.dev/v1\nkind: Model\nname: ${name}\n`);
    for (let v = 1; v <= VERSIONS_PER_MODEL; v++) file(`models/${name}/versions/${v}.yaml`, manifest(name, v, VERSIONS_PER_MODEL));
  }
  chunks.push(Buffer.from('\n'));
  git(['fast-import', '--quiet'], Buffer.concat(chunks));
  git(['reset', '--quiet', '--hard', 'main']);
  writeFileSync(join(work, '.git', 'info', 'exclude'), '.bench-ready\n');
  writeFileSync(join(work, '.bench-ready'), '');
  try {
    if (existsSync(dir) && !existsSync(join(dir, '.bench-ready'))) rmSync(dir, { recursive: true, force: true });
    renameSync(work, dir);
  } catch {
    // Someone else finished first: use theirs.
    rmSync(work, { recursive: true, force: true });
    if (!existsSync(join(dir, '.bench-ready'))) throw new Error(`could not build ${dir}`);
  }
  // The index was written in the private folder; paths in it are relative, so it stays valid.
  spawnSync('git', ['update-index', '-q', '--refresh'], { cwd: dir });
  return dir;
}

function time(cwd, args, before) {
  before?.();
  const start = performance.now();
  const r = spawnSync(NODE, [CLI, ...args], { cwd, encoding: 'utf8', maxBuffer: 1 << 30 });
  const ms = performance.now() - start;
  if (r.status !== 0) throw new Error(`modelgate ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { seconds: ms / 1000, stdout: r.stdout };
}

/** Seconds of one run of any command (a baseline); throws if it fails. */
function spawnTime(cmd, args, cwd) {
  const start = performance.now();
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 1 << 28 });
  const s = (performance.now() - start) / 1000;
  if (r.status !== 0 && !(cmd === 'git' && args[0] === 'grep' && r.status === 1)) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return s;
}

/**
 * CPU seconds (user + system, the process and its children: git included) of one run, through
 * bash's `times`; wall time is noise on a loaded machine, CPU time much less so.
 */
function cpuTime(cmd, args, cwd, before) {
  before?.();
  const r = spawnSync('bash', ['-c', '"$@" >/dev/null 2>&1; s=$?; times >&2; exit $s', 'bash', cmd, ...args], { cwd, encoding: 'utf8' });
  if (r.status !== 0 && !(cmd === 'git' && args[0] === 'grep' && r.status === 1)) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}`);
  const [user, sys] = [
    ...r.stderr
      .trim()
      .split('\n')
      .at(-1)
      .matchAll(/(\d+)m([\d.]+)s/g),
  ].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return user + sys;
}

/** Medians of `measures` (name → function returning seconds), run in turn `runs` times: a command and its baseline see the same load. */
function interleaved(measures, runs) {
  const times = Object.fromEntries(Object.keys(measures).map((k) => [k, []]));
  for (let i = 0; i < runs; i++) for (const [k, m] of Object.entries(measures)) times[k].push(m());
  return Object.fromEntries(Object.entries(times).map(([k, t]) => [k, t.sort((a, b) => a - b)[Math.floor(t.length / 2)]]));
}

function medianOf(measure, runs) {
  const times = Array.from({ length: runs }, measure).sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

function median(cwd, args, runs, before) {
  const times = [];
  let stdout = '';
  for (let i = 0; i < runs; i++) ({ seconds: times[i], stdout } = time(cwd, args, before));
  times.sort((a, b) => a - b);
  return { seconds: times[Math.floor(times.length / 2)], stdout };
}

/** Measures every figure; returns rows for bench/run.mjs. */
export async function run({ log = () => {} } = {}) {
  if (!existsSync(CLI)) throw new Error('dist/cli.js is missing: run `npm run build` first');
  log('preparing synthetic registries (cached under .bench/) …');
  const big = ensureRegistry(BIG);
  const small = ensureRegistry(SMALL);
  const dropCache = (dir) => () => rmSync(join(dir, '.git', 'modelgate'), { recursive: true, force: true });
  const rows = [];

  // Baselines, measured in this run: the git CLI doing the same lookup, and a bare Node start.
  const nodeStart = medianOf(() => spawnTime(NODE, ['-e', '0'], PROJECT), 7);
  const ratioRow = (name, value, baselineName, baseline, target) =>
    rows.push({ name, value: +value.toFixed(3), unit: 's', baselineName, baseline: +baseline.toFixed(3), target, pass: value / baseline <= target });

  if (want('help')) {
    const help = median(PROJECT, ['--help'], 7);
    ratioRow('modelgate --help', help.seconds, 'node -e 0', nodeStart, 2.5);
  }

  if (want('show')) {
    const showBig = median(big, ['--json', 'show', 'model-042@production'], 1);
    if (JSON.parse(showBig.stdout).version !== VERSIONS_PER_MODEL - 3) throw new Error('show returned the wrong version');
    const catFile = ['cat-file', 'blob', `HEAD:models/model-042/versions/${VERSIONS_PER_MODEL - 3}.yaml`];
    const show = ['--json', 'show', 'model-042@production'];
    // Interleaved with its baseline (issue 26), in wall time and in CPU time (git's included).
    const t = interleaved(
      {
        node: () => spawnTime(NODE, ['-e', '0'], PROJECT),
        catFile: () => spawnTime('git', catFile, big),
        show: () => time(big, show).seconds,
        small: () => time(small, ['--json', 'show', 'model-000@production']).seconds,
        nodeCpu: () => cpuTime(NODE, ['-e', '0'], PROJECT),
        catFileCpu: () => cpuTime('git', catFile, big),
        showCpu: () => cpuTime(NODE, [CLI, ...show], big),
      },
      11,
    );
    ratioRow(`show <m>@production (${BIG} models)`, t.show, 'node -e 0 + git cat-file', t.node + t.catFile, 2);
    ratioRow(`show <m>@production (${BIG} models), CPU time`, t.showCpu, 'the same, CPU time', t.nodeCpu + t.catFileCpu, 2);
    ratioRow(`show <m>@production, ${BIG} models`, t.show, `same at ${SMALL} models`, t.small, 1.3);
  }

  // An alias (SPEC v3 §9) resolves as fast as a stage: champion on the Production version, in an
  // aliases file written for this row only (untracked, removed after), so the shared registry stays as generated.
  if (want('resolve')) {
    const aliasesPath = join(big, 'models/model-042/aliases.yaml');
    writeFileSync(aliasesPath, `apiVersion: modelgate.dev/v1\nkind: ModelAliases\nmodel: model-042\naliases:\n  champion: ${VERSIONS_PER_MODEL - 3}\n`);
    try {
      const byStage = median(big, ['--json', 'resolve', 'model-042@production'], 7);
      const byAlias = median(big, ['--json', 'resolve', 'model-042@champion'], 7);
      if (JSON.parse(byAlias.stdout).version !== VERSIONS_PER_MODEL - 3) throw new Error('resolve @champion returned the wrong version');
      ratioRow(`resolve <m>@champion (${BIG * VERSIONS_PER_MODEL} versions)`, byAlias.seconds, 'resolve <m>@production', byStage.seconds, 1.2);
    } finally {
      rmSync(aliasesPath, { force: true });
    }
  }

  if (want('stage')) {
    const grepArgs = ['grep', '-l', 'stage: Production', 'HEAD', '--', 'models'];
    const list = ['--json', 'list', '--stage', 'Production'];
    const cold = median(big, list, 1, dropCache(big));
    const found = JSON.parse(cold.stdout);
    if (found.length !== BIG || found.some((v) => v.stage !== 'Production')) throw new Error(`list --stage Production returned ${found.length} versions`);
    // Cold (no .git/modelgate), warm (after a cold stage query: the catalog holds its candidates),
    // each interleaved with the grep, in wall time and in CPU time.
    const t = interleaved(
      {
        grep: () => spawnTime('git', grepArgs, big),
        cold: () => time(big, list, dropCache(big)).seconds,
        warm: () => time(big, list).seconds,
        grepCpu: () => cpuTime('git', grepArgs, big),
        coldCpu: () => cpuTime(NODE, [CLI, ...list], big, dropCache(big)),
        warmCpu: () => cpuTime(NODE, [CLI, ...list], big),
      },
      5,
    );
    ratioRow(`list --stage Production, cold (${BIG * VERSIONS_PER_MODEL} manifests)`, t.cold, 'git grep -l', t.grep, 1.5);
    ratioRow('list --stage Production, cold, CPU time', t.coldCpu, 'git grep -l, CPU time', t.grepCpu, 1.5);
    ratioRow('list --stage Production, warm', t.warm, 'git grep -l', t.grep, 1);
    ratioRow('list --stage Production, warm, CPU time', t.warmCpu, 'git grep -l, CPU time', t.grepCpu, 1);
  }

  // list --where and validate, cold and warm, with their peak memory: bench/catalog.bench.mjs.

  if (want('history')) {
    const history = median(big, ['--json', 'history', 'model-042'], 1);
    if (JSON.parse(history.stdout).length !== VERSIONS_PER_MODEL) throw new Error('history returned the wrong number of changes');
    const logArgs = ['log', '--raw', '--', 'models/model-042'];
    const hist = ['--json', 'history', 'model-042'];
    // git log alone (5–10 ms) is less than starting Node: the CLI's baseline includes that start, as show's does.
    const t = interleaved(
      {
        node: () => spawnTime(NODE, ['-e', '0'], PROJECT),
        log: () => spawnTime('git', logArgs, big),
        history: () => time(big, hist).seconds,
        nodeCpu: () => cpuTime(NODE, ['-e', '0'], PROJECT),
        logCpu: () => cpuTime('git', logArgs, big),
        historyCpu: () => cpuTime(NODE, [CLI, ...hist], big),
      },
      11,
    );
    ratioRow(`history <model> (${VERSIONS_PER_MODEL} versions)`, t.history, 'node -e 0 + git log --raw', t.node + t.log, 2);
    ratioRow(`history <model> (${VERSIONS_PER_MODEL} versions), CPU time`, t.historyCpu, 'the same, CPU time', t.nodeCpu + t.logCpu, 2);
  }

  return rows;
}

function printTable(rows) {
  const cells = [
    ['figure', 'value', 'baseline', 'ratio', 'target', 'result'],
    ...rows.map((r) =>
      r.baseline === undefined
        ? [r.name, `${r.value} ${r.unit}`, '', '', `≤ ${r.target} ${r.unit}`, r.pass ? 'pass' : 'MISS']
        : [
            r.name,
            `${r.value.toFixed(3)} s`,
            `${r.baseline.toFixed(3)} s (${r.baselineName})`,
            `${(r.value / r.baseline).toFixed(2)}×`,
            `≤ ${r.target}×`,
            r.pass ? 'pass' : 'MISS',
          ],
    ),
  ];
  const widths = cells[0].map((_, i) => Math.max(...cells.map((c) => c[i].length)));
  for (const c of cells)
    console.log(
      c
        .map((x, i) => x.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    );
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const rows = await run({ log: (m) => console.error(m) });
  printTable(rows);
  process.exitCode = rows.every((r) => r.pass) ? 0 : 1;
}
