// modelgate sync on 1,000 models × 2 environments, as whole processes of dist/cli.js (build first:
// npm run build). Targets: a full sync (every pin written) ≤ 3 s; a sync with nothing to change ≤ 1 s.
// On 100,000 versions (issue 10): `sync --check` with nothing to change ≤ 1 s and ≤ 3× git grep;
// promote's pin rendering ≤ 1.2× the same at 100 versions (with the catalog a working clone has;
// a fresh clone's figure is reported beside it).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const MODELS = 1000;

function write(root, path, text) {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), text);
}

function version(model, n, stage) {
  const sha = createHash('sha256').update(`${model}@${n}`).digest('hex');
  return `apiVersion: modelgate.dev/v1
kind: ModelVersion
model: ${model}
version: ${n}
stage: ${stage}
createdAt: "2026-11-27T10:00:00Z"
createdBy: bench
artifact:
  uri: s3://ml-models/registry/${model}/sha256/${sha}/model.joblib
  sha256: ${sha}
  size: 1234
format: joblib
metrics: {auc: 0.97}
`;
}

function registry() {
  const root = mkdtempSync(join(tmpdir(), 'modelgate-bench-sync-'));
  write(
    root,
    'modelgate.yaml',
    `apiVersion: modelgate.dev/v1
kind: Registry
storage: {uri: s3://ml-models/registry}
environments:
  staging: {stage: Staging, path: deploy/staging, namespace: models-staging}
  production: {stage: Production, path: deploy/production, namespace: models}
`,
  );
  for (let i = 0; i < MODELS; i++) {
    const m = `model-${String(i).padStart(4, '0')}`;
    write(root, `models/${m}/model.yaml`, `apiVersion: modelgate.dev/v1\nkind: Model\nname: ${m}\nowners: [bench]\ndeploy: {modelFormat: sklearn}\n`);
    write(root, `models/${m}/versions/1.yaml`, version(m, 1, 'Production'));
    write(root, `models/${m}/versions/2.yaml`, version(m, 2, 'Staging'));
  }
  return root;
}

function timed(root, args) {
  const start = process.hrtime.bigint();
  execFileSync(process.execPath, [CLI, '--registry', root, '--quiet', ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function gitSeconds(root, args) {
  const start = process.hrtime.bigint();
  try {
    execFileSync('git', args, { cwd: root, stdio: 'ignore', maxBuffer: 1 << 30 });
  } catch (e) {
    if (e.status !== 1) throw e;
  }
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/**
 * A private clone of `src` whose every model has deploy settings, with its pins written and
 * committed: what a registry that Argo CD deploys looks like (the generated registries have
 * none, and a sync over models without deploy settings renders nothing).
 */
function deployedClone(src, prefix) {
  const root = mkdtempSync(join(tmpdir(), prefix));
  execFileSync('git', ['clone', '--quiet', '--shared', src, root], { stdio: 'ignore' });
  for (const m of readdirSync(join(root, 'models'))) {
    const path = join(root, 'models', m, 'model.yaml');
    writeFileSync(path, readFileSync(path, 'utf8') + 'deploy: {modelFormat: onnx}\n');
  }
  if (!readFileSync(join(root, 'modelgate.yaml'), 'utf8').includes('environments:')) {
    const config = join(root, 'modelgate.yaml');
    writeFileSync(
      config,
      readFileSync(config, 'utf8') +
        'environments:\n  staging: {stage: Staging, path: deploy/staging}\n  production: {stage: Production, path: deploy/production}\n',
    );
  }
  execFileSync(process.execPath, [CLI, '--registry', root, '--quiet', 'sync'], { stdio: ['ignore', 'ignore', 'inherit'] });
  const id = ['-c', 'user.name=bench', '-c', 'user.email=bench@example.com'];
  execFileSync('git', ['add', '-A'], { cwd: root });
  execFileSync('git', [...id, 'commit', '--quiet', '-m', 'deploy settings and pins'], { cwd: root });
  return root;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * On the 100,000-version registry of registry.bench.mjs, every model deployed: `sync --check`
 * with nothing to change against `git grep` of the same lookup (which versions are in each
 * environment's stage), first with no catalog (a fresh clone) and then warm; and the pin
 * rendering of `promote --dry-run` (the planner `promote --pr` runs) against the same promotion
 * in a registry of 100 versions.
 */
async function largeRegistry() {
  const { ensureRegistry } = await import('./registry.bench.mjs');
  const { smallRegistry } = await import('./gate.bench.mjs');
  const big = deployedClone(ensureRegistry(100), 'mg-bench-sync-big-');
  const small = deployedClone(smallRegistry(100), 'mg-bench-sync-small-');
  try {
    const catalog = join(big, '.git', 'modelgate');
    const cold = median(
      [0, 1, 2].map(() => {
        rmSync(catalog, { recursive: true, force: true });
        return timed(big, ['sync', '--check']);
      }),
    );
    // Warm means settled: the catalog's seal check is stamped once the file is out of the file
    // clock's reach (2 s after it was written, see checkedLength in src/registry/catalog.ts).
    await new Promise((r) => setTimeout(r, 2100));
    timed(big, ['sync', '--check']);
    const warm = median([0, 1, 2].map(() => timed(big, ['sync', '--check'])));
    const grep = median([0, 1, 2].map(() => gitSeconds(big, ['grep', '-l', '-E', 'stage: (Staging|Production)', 'HEAD', '--', 'models'])));
    const promote = (root, v) => timed(root, ['promote', `model-000@${v}`, '--to', 'Production', '--dry-run']);
    // In turn, so that a burst of load on the shared machine falls on both sides alike.
    const bigRuns = [];
    const smallRuns = [];
    for (let i = 0; i < 5; i++) {
      bigRuns.push(promote(big, 999));
      smallRuns.push(promote(small, 99));
    }
    const [bigPromote, smallPromote] = [median(bigRuns), median(smallRuns)];
    // The catalog (filled by the sync --check runs above) tells the touched model's stages
    // without reading its 1,000 versions; a fresh clone has none and reads them all.
    rmSync(catalog, { recursive: true, force: true });
    const freshPromote = median([0, 1, 2].map(() => promote(big, 999)));
    const grepRow = (name, value, target) => ({
      name,
      value: +value.toFixed(3),
      unit: 's',
      baselineName: 'git grep of the same lookup',
      baseline: +grep.toFixed(3),
      target,
      pass: value / grep <= target,
    });
    return [
      grepRow('sync --check, nothing to change, 100,000 versions, catalog warm', warm, 3),
      { name: 'sync --check, nothing to change, 100,000 versions, catalog warm', value: +warm.toFixed(3), unit: 's', target: 1, pass: warm <= 1 },
      // A fresh clone parses every manifest once (and fills the catalog); informative.
      { name: 'sync --check, nothing to change, 100,000 versions, no catalog (fresh clone)', value: +cold.toFixed(3), unit: 's' },
      {
        name: 'promote --dry-run (the change promote --pr pushes, pins included), 100,000 versions',
        value: +bigPromote.toFixed(3),
        unit: 's',
        baselineName: 'the same at 100 versions',
        baseline: +smallPromote.toFixed(3),
        target: 1.2,
        pass: bigPromote / smallPromote <= 1.2,
      },
      {
        name: 'promote --dry-run, 100,000 versions, no catalog (fresh clone: the touched model read whole)',
        value: +freshPromote.toFixed(3),
        unit: 's',
        baselineName: 'the same at 100 versions',
        baseline: +smallPromote.toFixed(3),
      },
    ];
  } finally {
    rmSync(big, { recursive: true, force: true });
    rmSync(small, { recursive: true, force: true });
  }
}

export async function run() {
  const root = registry();
  try {
    const full = timed(root, ['sync']);
    const noop = Math.min(timed(root, ['sync']), timed(root, ['sync']));
    const check = timed(root, ['sync', '--check']);
    // Every model promoted: each production pin already exists and is edited in place.
    for (let i = 0; i < MODELS; i++) {
      const m = `model-${String(i).padStart(4, '0')}`;
      for (const [n, stage] of [
        [1, 'Archived'],
        [2, 'Production'],
      ]) {
        const path = join(root, `models/${m}/versions/${n}.yaml`);
        writeFileSync(path, readFileSync(path, 'utf8').replace(/^stage: .*$/m, `stage: ${stage}`));
      }
    }
    const promoted = timed(root, ['sync']);
    const large = await largeRegistry();
    return [
      ...large,
      { name: `sync: full (${MODELS} models × 2 environments, every pin written)`, value: +full.toFixed(3), unit: 's', target: 3, pass: full <= 3 },
      { name: 'sync: nothing to change', value: +noop.toFixed(3), unit: 's', target: 1, pass: noop <= 1 },
      { name: 'sync --check: in sync', value: +check.toFixed(3), unit: 's', target: 1, pass: check <= 1 },
      { name: `sync: ${MODELS} promotions (every production pin edited in place)`, value: +promoted.toFixed(3), unit: 's', target: 3, pass: promoted <= 3 },
    ];
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const rows = await run();
  for (const r of rows) console.log(`${r.pass ? 'PASS' : 'FAIL'}  ${r.name}: ${r.value} ${r.unit} (target ≤ ${r.target} ${r.unit})`);
  process.exitCode = rows.every((r) => r.pass) ? 0 : 1;
}
