#!/usr/bin/env node
// The catalog's rows (issue 26): `list --where` and `validate` on the synthetic registry of
// bench/registry.bench.mjs (MODELGATE_BENCH_MODELS × 1,000 versions, 100,000 by default), cold
// (no catalog: every manifest parsed, by the pool of threads) and warm, each against a baseline
// measured in the same run, interleaved with it (MODELGATE_BENCH_RUNS rounds, 3 by default; the
// median of each is kept). Wall and CPU time (user + system, the process and its children) and
// peak memory come from GNU time. `node bench/run.mjs catalog`, or run this file directly after
// `npm run build`.
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ensureRegistry } from './registry.bench.mjs';

const PROJECT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(PROJECT, 'dist/cli.js');
const NODE = existsSync(join(PROJECT, 'node_modules/.bin/node')) ? join(PROJECT, 'node_modules/.bin/node') : process.execPath;
const MODELS = Number(process.env.MODELGATE_BENCH_MODELS ?? 100);
const RUNS = Number(process.env.MODELGATE_BENCH_RUNS ?? 3);
const TIME = '/usr/bin/time';

/** One run of `cmd`: wall and CPU seconds, peak resident MiB (GNU time's %e %U %S %M). */
function measure(cmd, args, cwd, okCodes = [0]) {
  const r = spawnSync(TIME, ['-f', '@@ %e %U %S %M', cmd, ...args], { cwd, encoding: 'utf8', maxBuffer: 1 << 30 });
  const m = /@@ ([\d.]+) ([\d.]+) ([\d.]+) (\d+)\s*$/.exec(r.stderr);
  if (!m || !okCodes.includes(r.status)) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(-500)}`);
  return { wall: Number(m[1]), cpu: Number(m[2]) + Number(m[3]), mib: Number(m[4]) / 1024, stdout: r.stdout };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run({ log = () => {} } = {}) {
  if (!existsSync(CLI)) throw new Error('dist/cli.js is missing: run `npm run build` first');
  if (!existsSync(TIME)) throw new Error(`${TIME} (GNU time) is needed for CPU time and peak memory`);
  log('preparing the synthetic registry (cached under .bench/) …');
  const big = ensureRegistry(MODELS);
  const versions = MODELS * 1000;
  const dropCatalog = () => rmSync(join(big, '.git', 'modelgate'), { recursive: true, force: true });
  const cli = (...args) => measure(NODE, [CLI, ...args], big);
  const whereArgs = ['--json', 'list', '--where', 'metrics.auc > 0.95'];
  const yamlScript = `import { load } from ${JSON.stringify(pathToFileURL(join(PROJECT, 'node_modules/js-yaml/dist/js-yaml.mjs')).href)};
import { readdirSync, readFileSync } from 'node:fs';
for (const m of readdirSync('models')) for (const f of readdirSync('models/' + m + '/versions')) load(readFileSync('models/' + m + '/versions/' + f, 'utf8'));`;

  const figures = { grep: [], cold: [], warm: [], validateCold: [], validateWarm: [], yaml: [] };
  let expected;
  for (let i = 0; i < RUNS; i++) {
    log(`round ${i + 1} of ${RUNS} …`);
    figures.grep.push(measure('git', ['grep', '-l', '-E', 'auc: 0\\.9[5-9]', 'HEAD', '--', 'models'], big, [0, 1]));
    dropCatalog();
    const cold = cli(...whereArgs);
    figures.cold.push(cold);
    const warm = cli(...whereArgs);
    figures.warm.push(warm);
    expected ??= cold.stdout;
    if (cold.stdout !== expected || warm.stdout !== expected) throw new Error('list --where answered differently cold and warm');
    figures.yaml.push(measure(NODE, ['--input-type=module', '-e', yamlScript], big));
    dropCatalog();
    figures.validateCold.push(cli('validate'));
    figures.validateWarm.push(cli('validate'));
  }
  const found = JSON.parse(expected);
  if (found.length === 0 || found.some((v) => !(v.metrics.auc > 0.95))) throw new Error(`list --where returned ${found.length} versions, some not matching`);

  const of = (name, key) => median(figures[name].map((f) => f[key]));
  const rows = [];
  const ratio = (name, figure, key, baseline, baselineName, target) =>
    rows.push({
      name: `${name} (${versions.toLocaleString('en')} versions${key === 'cpu' ? ', CPU' : ''})`,
      value: +of(figure, key).toFixed(3),
      unit: 's',
      baselineName: `${baselineName}${key === 'cpu' ? ', CPU' : ''}`,
      baseline: +of(baseline, key).toFixed(3),
      target,
    });
  const where = 'list --where "metrics.auc > 0.95"';
  const yaml = 'node + js-yaml loading every file';
  ratio(`${where}, cold`, 'cold', 'wall', 'grep', 'git grep -E', 2);
  ratio(`${where}, cold`, 'cold', 'cpu', 'grep', 'git grep -E', undefined);
  ratio(`${where}, warm`, 'warm', 'wall', 'grep', 'git grep -E', 1);
  ratio(`${where}, warm`, 'warm', 'cpu', 'grep', 'git grep -E', undefined);
  ratio('validate, cold', 'validateCold', 'cpu', 'yaml', yaml, 1.5);
  ratio('validate, cold', 'validateCold', 'wall', 'yaml', yaml, undefined);
  ratio('validate, warm', 'validateWarm', 'wall', 'yaml', yaml, 0.5);
  for (const [name, key] of [
    ['list --where, cold', 'cold'],
    ['list --where, warm', 'warm'],
  ]) {
    const mib = Math.round(Math.max(...figures[key].map((f) => f.mib)));
    rows.push({ name: `${name}: peak memory (${versions.toLocaleString('en')} versions)`, value: mib, unit: 'MiB', target: 150, pass: mib <= 150 });
  }
  return rows;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  for (const r of await run({ log: (m) => console.error(m) })) {
    const judged = r.baseline === undefined ? '' : ` ÷ ${r.baseline} s (${r.baselineName}) = ${(r.value / r.baseline).toFixed(2)}×`;
    console.log(
      `${r.name}: ${r.value} ${r.unit}${judged}${r.target === undefined ? '' : ` (target ${r.baseline === undefined ? '≤ ' + r.target + ' ' + r.unit : '≤ ' + r.target + '×'})`}`,
    );
  }
}
