#!/usr/bin/env node
// Gate speed targets (issue 4), measured as whole processes:
//   `check` on a pull request changing 2 manifests in a registry of 100,000 versions ≤ 2 s
//   (no artifact re-hashing), and ≤ 1.3 × the same pull request in a registry of 100 versions;
//   cold start of dist/action.js to its first GitHub API call ≤ 0.4 s.
// Run directly (`node bench/gate.bench.mjs`, after `npm run build`) or through bench/run.mjs.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ensureRegistry } from './registry.bench.mjs';

const PROJECT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(PROJECT, 'dist/cli.js');
const ACTION = join(PROJECT, 'dist/action.js');
const NODE = existsSync(join(PROJECT, 'node_modules/.bin/node')) ? join(PROJECT, 'node_modules/.bin/node') : process.execPath;

const POLICY = `apiVersion: modelgate.dev/v1
kind: PromotionPolicy
rules:
  - name: to-production
    to: Production
    from: [Staging]
    approvals: [{count: 1, teams: [ml-governance]}]
    metrics: {auc: {min: 0.5}}
    champion: {auc: {maxRegression: 0.5}}
    requiredFields: [lineage.code.commit]
  - {name: archive, to: Archived, from: [Staging, None]}
  - {name: registry-config, paths: [modelgate.yaml, "policies/**"], approvals: [{count: 2, teams: [platform]}]}
`;

function git(dir, args, opts = {}) {
  const r = spawnSync('git', args, { cwd: dir, encoding: 'utf8', maxBuffer: 1 << 30, ...opts });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trim();
}

/** Commits `files` on top of `parent` without touching the work tree; returns the commit. */
function commitFiles(dir, parent, files, message) {
  const index = join(mkdtempSync(join(tmpdir(), 'mg-bench-idx-')), 'index');
  const env = {
    ...process.env,
    GIT_INDEX_FILE: index,
    GIT_AUTHOR_NAME: 'Bench',
    GIT_AUTHOR_EMAIL: 'b@example.com',
    GIT_COMMITTER_NAME: 'Bench',
    GIT_COMMITTER_EMAIL: 'b@example.com',
  };
  git(dir, ['read-tree', parent], { env });
  for (const [path, text] of Object.entries(files)) {
    const oid = git(dir, ['hash-object', '-w', '--stdin'], { input: text, env });
    git(dir, ['update-index', '--add', '--cacheinfo', `100644,${oid},${path}`], { env });
  }
  const tree = git(dir, ['write-tree'], { env });
  rmSync(dirname(index), { recursive: true, force: true });
  return git(dir, ['commit-tree', tree, '-p', parent, '-m', message], { env });
}

/** A small registry: one model with `versions` versions, shaped like the big one. */
export function smallRegistry(versions) {
  const dir = join(PROJECT, '.bench', `gate-small-${versions}`);
  if (existsSync(join(dir, '.bench-ready'))) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  git(dir, ['init', '--quiet', '-b', 'main']);
  const big = ensureRegistry(1);
  const files = {
    'modelgate.yaml': git(big, ['show', 'main:modelgate.yaml']) + '\n',
    'models/model-000/model.yaml': git(big, ['show', 'main:models/model-000/model.yaml']) + '\n',
  };
  // the last `versions` versions of the generated model, renumbered 1..versions
  for (let i = 1; i <= versions; i++) {
    const from = 1000 - versions + i;
    files[`models/model-000/versions/${i}.yaml`] =
      git(big, ['show', `main:models/model-000/versions/${from}.yaml`]).replace(/^version: \d+$/m, `version: ${i}`) + '\n';
  }
  const empty = git(dir, ['hash-object', '-t', 'tree', '-w', '--stdin'], { input: '' });
  const root = git(dir, ['commit-tree', empty, '-m', 'empty'], {
    env: { ...process.env, GIT_AUTHOR_NAME: 'B', GIT_AUTHOR_EMAIL: 'b@e', GIT_COMMITTER_NAME: 'B', GIT_COMMITTER_EMAIL: 'b@e' },
  });
  const commit = commitFiles(dir, root, files, 'small registry');
  git(dir, ['update-ref', 'refs/heads/main', commit]);
  git(dir, ['reset', '--quiet', '--hard', 'main']);
  writeFileSync(join(dir, '.bench-ready'), '');
  return dir;
}

/** Base (the registry plus a policy) and a pull request head promoting the Staging version before the newest. */
function preparePullRequest(dir, last) {
  const main = git(dir, ['rev-parse', 'main']);
  const base = commitFiles(dir, main, { 'policies/promotion.yaml': POLICY }, 'policy');
  const path = (v) => `models/model-000/versions/${v}.yaml`;
  const candidate = git(dir, ['show', `${base}:${path(last - 1)}`]) + '\n';
  const champion = git(dir, ['show', `${base}:${path(last - 3)}`]) + '\n';
  const head = commitFiles(
    dir,
    base,
    {
      [path(last - 1)]: candidate.replace('stage: Staging', 'stage: Production'),
      [path(last - 3)]: champion.replace('stage: Production', 'stage: Archived'),
    },
    'promote',
  );
  return { base, head };
}

function runCheck(dir, base, head) {
  const t = process.hrtime.bigint();
  const r = spawnSync(NODE, [CLI, '--registry', dir, '--json', 'check', '--base', base, '--head', head, '--no-approvals'], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  const out = JSON.parse(r.stdout || '{}');
  if (out.decision !== 'pass') throw new Error(`check did not pass (${out.decision ?? r.stderr.split('\n')[0]}): ${out.summary ?? ''}`);
  return ms;
}

function timeMs(f) {
  const t = process.hrtime.bigint();
  f();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

/** Milliseconds from spawning `node -e "fetch(url)"` to its request reaching a loopback server (median of 5). */
async function oneFetch() {
  const times = [];
  for (let i = 0; i < 5; i++) {
    let first;
    const server = createServer((req, res) => {
      first ??= process.hrtime.bigint();
      res.writeHead(503).end();
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const started = process.hrtime.bigint();
    const child = spawn(NODE, ['-e', `fetch('http://127.0.0.1:${server.address().port}/').catch(() => {})`], { stdio: 'ignore' });
    await new Promise((r) => child.on('close', r));
    server.close();
    if (first) times.push(Number(first - started) / 1e6);
  }
  return median(times);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function coldStart() {
  const dir = mkdtempSync(join(tmpdir(), 'mg-bench-action-'));
  const eventPath = join(dir, 'event.json');
  writeFileSync(eventPath, JSON.stringify({ pull_request: { number: 1 } }));
  const times = [];
  for (let i = 0; i < 5; i++) {
    let started;
    let first;
    const server = createServer((req, res) => {
      first ??= process.hrtime.bigint();
      res.writeHead(503, { 'content-type': 'application/json' }).end('{"message":"bench"}');
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const env = {
      PATH: process.env.PATH,
      GITHUB_EVENT_PATH: eventPath,
      GITHUB_EVENT_NAME: 'pull_request_target',
      GITHUB_REPOSITORY: 'acme/registry',
      GITHUB_API_URL: `http://127.0.0.1:${server.address().port}`,
      GITHUB_WORKSPACE: dir,
      RUNNER_TEMP: dir,
      INPUT_COMMAND: 'check',
      'INPUT_GITHUB-TOKEN': 'bench',
      GITHUB_OUTPUT: join(dir, 'out'),
      GITHUB_STEP_SUMMARY: join(dir, 'summary'),
    };
    writeFileSync(env.GITHUB_OUTPUT, '');
    started = process.hrtime.bigint();
    const child = spawn(NODE, [ACTION], { env, stdio: 'ignore' });
    await new Promise((r) => child.on('close', r));
    server.close();
    if (first) times.push(Number(first - started) / 1e6);
  }
  rmSync(dir, { recursive: true, force: true });
  if (!times.length) throw new Error('dist/action.js made no API call');
  return median(times);
}

export async function run() {
  if (!existsSync(CLI) || !existsSync(ACTION)) throw new Error('run npm run build first');
  const big = ensureRegistry(100);
  const small = smallRegistry(100);
  const bigPr = preparePullRequest(big, 1000);
  const smallPr = preparePullRequest(small, 100);
  runCheck(big, bigPr.base, bigPr.head); // warm the OS file cache, as a CI runner's second job would be
  const bigMs = median([0, 1, 2].map(() => runCheck(big, bigPr.base, bigPr.head)));
  const smallMs = median([0, 1, 2].map(() => runCheck(small, smallPr.base, smallPr.head)));
  const cold = await coldStart();
  // Baselines in the same run: git computing the same merge and change set; Node making one request.
  const gitMs = median(
    [0, 1, 2].map(() =>
      timeMs(() => {
        const tree = git(big, ['merge-tree', '--write-tree', bigPr.base, bigPr.head]).split('\n')[0];
        git(big, ['diff', '--raw', bigPr.base, tree]);
      }),
    ),
  );
  // Informative: Node's own start (`node -e 0`) alone is several times git's work above, so the
  // least any Node command asking git the same costs is that start plus git's work.
  const nodeMs = median([0, 1, 2, 3, 4].map(() => timeMs(() => spawnSync(NODE, ['-e', '0']))));
  const fetchMs = await oneFetch();
  const ratio = (name, value, baselineName, baseline, target) => ({
    name,
    value: value / 1000,
    unit: 's',
    baselineName,
    baseline: baseline / 1000,
    target,
    pass: value / baseline <= target,
  });
  return [
    ratio('check, 2-file PR, 100,000 versions', bigMs, 'same PR at 100 versions', smallMs, 1.3),
    ratio('check, 2-file PR, 100,000 versions', bigMs, 'git merge-tree --write-tree + git diff --raw', gitMs, 5),
    {
      ...ratio('check, 2-file PR, 100,000 versions', bigMs, 'node -e 0 + the same git commands (informative)', nodeMs + gitMs, 5),
      target: undefined,
      pass: undefined,
    },
    ratio('dist/action.js cold start to first API call', cold, 'a one-line Node fetch script', fetchMs, 1.5),
    { name: 'check, 2 manifests, 100,000-version registry', value: bigMs / 1000, unit: 's', target: 2, pass: bigMs <= 2000 },
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const row of await run()) console.log(`${row.pass ? 'pass' : 'MISS'}  ${row.name}: ${row.value.toFixed(3)} ${row.unit} (target ≤ ${row.target})`);
}
