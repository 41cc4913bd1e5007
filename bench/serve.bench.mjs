#!/usr/bin/env node
// `modelgate serve` against MLflow's own server (issue 23), on the same registry content: the
// synthetic registry of 100 models × 1,000 versions (bench/registry.bench.mjs, MODELGATE_BENCH_MODELS
// sets the number of models) with an alias `champion` per model, served by serve from its own clone
// of a git http-backend remote, and the same records (as serve answers them: versions, stages, tags,
// aliases) written into a real `mlflow server` with its SQLite backend (bench/serve-mlflow-load.py,
// through MLflow's own SQLAlchemy model classes; cached under .bench/). Measured with `wrk`:
//   get-by-alias and search_model_versions(name='<m>') throughput ≥ 10× MLflow's, p99 ≤ MLflow's p50
//   serve's resident memory after those runs ≤ 300 MB (with the Node options of serve's image)
//   a commit pushed to the remote answered within one --refresh interval
// Needs wrk and .venv (scripts/python-env.sh). Run directly (`node bench/serve.bench.mjs`, after
// `npm run build`) or through bench/run.mjs.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ensureRegistry } from './registry.bench.mjs';
import { daemon, freePort, sh, sleep, startMlflowServer, waitFor } from './processes.mjs';
import { loadGitServer } from './remote.bench.mjs';

const PROJECT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(PROJECT, 'dist/cli.js');
const NODE = existsSync(join(PROJECT, 'node_modules/.bin/node')) ? join(PROJECT, 'node_modules/.bin/node') : process.execPath;
const PYTHON = join(PROJECT, '.venv/bin/python');
const BIG = Number(process.env.MODELGATE_BENCH_MODELS ?? 100);
const VERSIONS_PER_MODEL = 1000;
/** serve's --refresh in this run, in seconds: the budget of the refresh row. */
const REFRESH = 10;
/** wrk's run per figure, in seconds, and its connections. */
const WRK_SECONDS = Number(process.env.MODELGATE_BENCH_WRK_SECONDS ?? 15);
const CONNECTIONS = 8;
const MODEL = `model-${String(Math.min(42, BIG - 1)).padStart(3, '0')}`;
const CHAMPION = VERSIONS_PER_MODEL - 3;

/** The Node options serve's image runs it with (serve/Dockerfile's ENV NODE_OPTIONS): the memory row measures serve as deployed. */
function imageNodeOptions() {
  const m = /^ENV NODE_OPTIONS="([^"]*)"/m.exec(readFileSync(join(PROJECT, 'serve/Dockerfile'), 'utf8'));
  if (!m) throw new Error('serve/Dockerfile sets no NODE_OPTIONS');
  return m[1];
}

/** One commit on `branch` of a bare repository, written with fast-import: `files` path → text. */
function commitFiles(gitDir, branch, message, files, when) {
  const chunks = [
    `commit refs/heads/${branch}\ncommitter Bench <bench@example.com> ${when} +0000\ndata ${Buffer.byteLength(message)}\n${message}\nfrom refs/heads/${branch}^0\n`,
  ];
  for (const [path, text] of Object.entries(files)) chunks.push(`M 100644 inline ${path}\ndata ${Buffer.byteLength(text)}\n${text}\n`);
  sh('git', ['--git-dir', gitDir, 'fast-import', '--quiet'], { input: chunks.join('') + '\n' });
  return sh('git', ['--git-dir', gitDir, 'rev-parse', `refs/heads/${branch}`]).trim();
}

const aliasesFile = (model, version) => `apiVersion: modelgate.dev/v1\nkind: ModelAliases\nmodel: ${model}\naliases:\n  champion: ${version}\n`;

/** wrk's requests per second and latency percentiles (ms) for one URL; any non-2xx answer fails the run. */
async function wrk(url) {
  // Asynchronous: the git server serve refreshes from answers from this process meanwhile.
  const out = await new Promise((resolveOut, reject) => {
    const child = spawn('wrk', ['-t2', `-c${CONNECTIONS}`, `-d${WRK_SECONDS}s`, '--timeout', '30s', '--latency', url]);
    let text = '';
    child.stdout.on('data', (d) => (text += d));
    child.stderr.on('data', (d) => (text += d));
    child.on('close', (code) => (code === 0 ? resolveOut(text) : reject(new Error(`wrk exited ${code}: ${text}`))));
  });
  if (/Non-2xx or 3xx responses/.test(out)) throw new Error(`wrk ${url}: error answers\n${out}`);
  const ms = (text) => {
    const m = /^([0-9.]+)(us|ms|s|m)$/.exec(text);
    if (!m) throw new Error(`wrk: cannot read the latency ${text}`);
    return Number(m[1]) * { us: 0.001, ms: 1, s: 1000, m: 60_000 }[m[2]];
  };
  const pct = (p) => ms(new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(out)[1]);
  return { rps: Number(/Requests\/sec:\s+([0-9.]+)/.exec(out)[1]), p50: pct(50), p99: pct(99), requests: Number(/([0-9]+) requests in/.exec(out)[1]) };
}

/** Resident and peak resident memory of a process, MB (Linux /proc). */
function memoryOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+([0-9]+) kB`, 'm').exec(status)[1]);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

/** The MLflow SQLite store holding what serve answers, cached under .bench/ per registry size. */
async function ensureMlflowDb(serveUrl, log) {
  const dir = join(PROJECT, '.bench', `mlflow-g1-${BIG}x${VERSIONS_PER_MODEL}`);
  const db = join(dir, 'mlflow.db');
  if (existsSync(join(dir, '.bench-ready'))) return dir;
  const work = `${dir}.building-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  log(`dumping serve's MLflow records of ${BIG} models …`);
  const lines = [];
  for (let m = 0; m < BIG; m++) {
    const name = `model-${String(m).padStart(3, '0')}`;
    const q = (path) => fetch(`${serveUrl}/api/2.0/mlflow/${path}`).then((r) => (r.ok ? r.json() : Promise.reject(new Error(`${path}: ${r.status}`))));
    const model = (await q(`registered-models/get?name=${name}`)).registered_model;
    const versions = (await q(`model-versions/search?filter=${encodeURIComponent(`name='${name}'`)}&max_results=10000`)).model_versions;
    lines.push(JSON.stringify({ model, versions }));
  }
  log('writing them into MLflow’s SQLite store …');
  sh(PYTHON, [join(PROJECT, 'bench/serve-mlflow-load.py'), join(work, 'mlflow.db')], { input: lines.join('\n') + '\n' });
  writeFileSync(join(work, '.bench-ready'), '');
  rmSync(dir, { recursive: true, force: true });
  renameSync(work, dir);
  if (!existsSync(db)) throw new Error(`${db} is missing`);
  return dir;
}

export async function run({ log = (m) => process.stderr.write(`${m}\n`) } = {}) {
  if (!existsSync(CLI)) throw new Error('dist/cli.js is missing: run `npm run build` first');
  if (spawnSync('wrk', ['--version']).error) throw new Error('wrk is not installed (apt-get install -y wrk)');
  if (!existsSync(PYTHON) || spawnSync(PYTHON, ['-c', 'import mlflow']).status !== 0)
    throw new Error('.venv with mlflow is missing: bash scripts/python-env.sh');
  const registry = ensureRegistry(BIG);
  const work = mkdtempSync(join(tmpdir(), 'mg-bench-serve-'));
  const stops = [];
  try {
    // The remote: a bare copy of the synthetic registry with `champion` on each model's Production version.
    const served = join(work, 'srv');
    const gitDir = join(served, 'registry.git');
    sh('git', ['clone', '-q', '--bare', registry, gitDir]);
    const aliases = {};
    for (let m = 0; m < BIG; m++) {
      const name = `model-${String(m).padStart(3, '0')}`;
      aliases[`models/${name}/aliases.yaml`] = aliasesFile(name, CHAMPION);
    }
    commitFiles(gitDir, 'main', 'champion on each Production version\n', aliases, 1767229200);
    const { serveGitHttp } = await loadGitServer(work);
    const gitServer = await serveGitHttp(served);
    stops.push(() => gitServer.close());

    log(`starting modelgate serve over ${BIG * VERSIONS_PER_MODEL} versions (its own clone of the remote) …`);
    const servePort = await freePort();
    const serve = daemon(
      NODE,
      [
        CLI,
        'serve',
        '--registry',
        `${gitServer.url}/registry.git`,
        '--listen',
        `127.0.0.1:${servePort}`,
        '--refresh',
        String(REFRESH),
        '--rate-limit',
        '0',
        '--quiet',
      ],
      { cwd: work, env: { ...process.env, NODE_OPTIONS: imageNodeOptions() } },
    );
    stops.push(serve.stop);
    const serveUrl = `http://127.0.0.1:${servePort}`;
    await waitFor(`${serveUrl}/readyz`, 'modelgate serve', serve);

    const mlflowDir = await ensureMlflowDb(serveUrl, log);
    log('starting mlflow server (SQLite backend) …');
    const mlflow = await startMlflowServer({
      project: PROJECT,
      db: join(mlflowDir, 'mlflow.db'),
      artifacts: join(work, 'mlflow-artifacts'),
      cwd: work,
      probe: `/api/2.0/mlflow/registered-models/get?name=${MODEL}`,
      steady: 20,
    });
    stops.push(mlflow.stop);
    const mlflowUrl = mlflow.url;

    // The same answer from both, checked before anything is timed.
    const aliasPath = `/api/2.0/mlflow/registered-models/alias?name=${MODEL}&alias=champion`;
    const searchPath = `/api/2.0/mlflow/model-versions/search?filter=${encodeURIComponent(`name='${MODEL}'`)}&max_results=10000`;
    for (const [who, base] of [
      ['serve', serveUrl],
      ['mlflow', mlflowUrl],
    ]) {
      const alias = await (await fetch(base + aliasPath)).json();
      if (alias.model_version?.version !== String(CHAMPION)) throw new Error(`${who}: ${MODEL}@champion is ${JSON.stringify(alias).slice(0, 300)}`);
      const search = await (await fetch(base + searchPath)).json();
      if (search.model_versions?.length !== VERSIONS_PER_MODEL) throw new Error(`${who}: search found ${search.model_versions?.length} versions`);
    }

    const rows = [];
    for (const [figure, path] of [
      ['get-by-alias', aliasPath],
      [`search_model_versions(name='<m>') (${VERSIONS_PER_MODEL} versions a page)`, searchPath],
    ]) {
      log(`wrk ${figure}: MLflow …`);
      const theirs = await wrk(mlflowUrl + path);
      log(`  ${JSON.stringify(theirs)}\nwrk ${figure}: serve …`);
      const ours = await wrk(serveUrl + path);
      log(`  ${JSON.stringify(ours)}`);
      const ratio = ours.rps / theirs.rps;
      rows.push({
        name: `${figure} req/s, serve ÷ MLflow (${ours.rps.toFixed(0)} / ${theirs.rps.toFixed(0)})`,
        value: +ratio.toFixed(2),
        unit: '×',
        target: 10,
        atLeast: true,
        pass: ratio >= 10,
      });
      rows.push({
        name: `${figure} p99, serve`,
        value: +ours.p99.toFixed(2),
        unit: 'ms',
        baselineName: 'MLflow p50',
        baseline: +theirs.p50.toFixed(2),
        target: 1,
        pass: ours.p99 <= theirs.p50,
      });
    }

    const memory = memoryOf(serve.child.pid);
    log(`serve memory: ${JSON.stringify(memory)}`);
    rows.push({
      name: `serve resident memory at ${BIG * VERSIONS_PER_MODEL} versions (peak ${memory.hwm.toFixed(0)} MB)`,
      value: +memory.rss.toFixed(0),
      unit: 'MB',
      target: 300,
      pass: memory.rss <= 300,
    });

    // A commit pushed to the remote (champion moved), then asked for until serve answers from it.
    const before = (await fetch(serveUrl + aliasPath)).headers.get('x-modelgate-commit');
    const pushed = commitFiles(gitDir, 'main', 'champion moves\n', { [`models/${MODEL}/aliases.yaml`]: aliasesFile(MODEL, CHAMPION - 1) }, 1767232800);
    if (pushed === before) throw new Error('the pushed commit is the one served');
    const start = performance.now();
    let seconds;
    while ((performance.now() - start) / 1000 < REFRESH * 3) {
      const r = await fetch(serveUrl + aliasPath);
      if (r.headers.get('x-modelgate-commit') === pushed) {
        const body = await r.json();
        if (body.model_version.version !== String(CHAMPION - 1)) throw new Error('the new commit answered the old champion');
        seconds = (performance.now() - start) / 1000;
        break;
      }
      await r.arrayBuffer();
      await sleep(50);
    }
    rows.push({
      name: `a commit on the remote answered (--refresh ${REFRESH})`,
      value: seconds === undefined ? REFRESH * 3 : +seconds.toFixed(2),
      unit: 's',
      target: REFRESH,
      pass: seconds !== undefined && seconds <= REFRESH,
    });
    return rows;
  } finally {
    for (const stop of stops.reverse()) await stop();
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const row of await run()) console.log(JSON.stringify(row));
}
