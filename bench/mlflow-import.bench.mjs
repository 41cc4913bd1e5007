#!/usr/bin/env node
// `modelgate import mlflow` of N registered versions (issue 25: N = 1,000) ≤ 2× the time MLflow's
// own client takes to download the same artifacts, both measured in the same run against the same
// real `mlflow server` (SQLite backend, artifact proxy, loopback). The server is filled by
// bench/mlflow-import-fill.py through the real MLflow client: one run holding N distinct copies of a
// small scikit-learn model (uploaded by 8 threads), N versions registered from them by 8 threads.
// The baseline is mlflow.artifacts.download_artifacts("models:/<name>/<v>") for every version, one
// after the other, in one Python process (its start not counted); the import is the whole CLI
// process into a fresh registry (local commits, a file:// store). MODELGATE_BENCH_MLFLOW_VERSIONS
// sets N. Needs .venv (scripts/python-env.sh). Run directly (`node bench/mlflow-import.bench.mjs`,
// after `npm run build`) or through bench/run.mjs.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { sh, startMlflowServer } from './processes.mjs';

const PROJECT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(PROJECT, 'dist/cli.js');
const NODE = existsSync(join(PROJECT, 'node_modules/.bin/node')) ? join(PROJECT, 'node_modules/.bin/node') : process.execPath;
const PYTHON = join(PROJECT, '.venv/bin/python');
const FILL = join(PROJECT, 'bench/mlflow-import-fill.py');
const N = Number(process.env.MODELGATE_BENCH_MLFLOW_VERSIONS ?? 1000);
const MODEL = 'bench-model';
const TARGET = 2;

export async function run({ log = (m) => process.stderr.write(`${m}\n`) } = {}) {
  if (!existsSync(CLI)) throw new Error('dist/cli.js is missing: run `npm run build` first');
  if (!existsSync(PYTHON) || spawnSync(PYTHON, ['-c', 'import mlflow']).status !== 0)
    throw new Error('.venv with mlflow is missing: bash scripts/python-env.sh');
  const work = mkdtempSync(join(tmpdir(), 'mg-bench-mlflow-import-'));
  const server = await startMlflowServer({ project: PROJECT, db: join(work, 'mlflow.db'), artifacts: join(work, 'mlartifacts'), cwd: work });
  const { url } = server;
  try {
    const env = { ...process.env, MLFLOW_TRACKING_URI: url };
    log(`filling MLflow with ${N} versions …`);
    let start = performance.now();
    sh(PYTHON, [FILL, 'fill', MODEL, String(N)], { cwd: work, env });
    log(`  filled in ${((performance.now() - start) / 1000).toFixed(1)} s`);

    log('MLflow client: download_artifacts of every version …');
    const baseline = JSON.parse(sh(PYTHON, [FILL, 'download', MODEL, String(N), join(work, 'downloaded')], { cwd: work, env }));
    rmSync(join(work, 'downloaded'), { recursive: true, force: true });

    log('modelgate import mlflow …');
    const registry = join(work, 'registry');
    sh('git', ['init', '-q', '-b', 'main', registry]);
    writeFileSync(
      join(registry, 'modelgate.yaml'),
      `apiVersion: modelgate.dev/v1\nkind: Registry\nstorage:\n  uri: ${JSON.stringify(pathToFileURL(join(work, 'store')).href)}\n`,
    );
    sh('git', ['add', '-A'], { cwd: registry });
    sh('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@example.com', 'commit', '-q', '-m', 'registry'], { cwd: registry });
    start = performance.now();
    const out = sh(NODE, [CLI, 'import', 'mlflow', '--tracking-uri', url, '--json'], { cwd: registry });
    const seconds = (performance.now() - start) / 1000;
    const report = JSON.parse(out);
    const registered = report.imported.filter((i) => i.change.startsWith('Register ')).length;
    if (registered !== N) throw new Error(`import mlflow registered ${registered} of ${N} versions: ${JSON.stringify(report.notCarried).slice(0, 500)}`);
    const commits = Number(sh('git', ['rev-list', '--count', 'HEAD'], { cwd: registry }).trim());
    if (commits !== N + 1) throw new Error(`import mlflow left ${commits - 1} commits for ${N} versions`);
    return [
      {
        name: `import mlflow of ${N} versions (${(baseline.bytes / 1e6).toFixed(1)} MB)`,
        value: seconds,
        unit: 's',
        baseline: baseline.seconds,
        baselineName: `MLflow client download_artifacts of the same ${N}`,
        target: TARGET,
      },
    ];
  } finally {
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  for (const row of await run()) console.log(JSON.stringify(row));
}
