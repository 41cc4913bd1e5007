#!/usr/bin/env node
// Issue 11 items 3 and 4 (SPEC v2 §5 artifact.index, wire speed for pull), as ratios measured
// in one run on this machine:
//   register a 100,000-file directory (10 KB each) to file://  ≤ 2 × hashing the same files alone
//   peak memory of that register                                ≤ 512 MB
//   pull 1 GiB from S3, verified                                ≤ 1.1 × `aws s3 cp` down
// BENCH_DIR_FILES changes the file count (default 100000). The S3 rows need the loopback S3
// server (bash scripts/s3-server.sh start) and the AWS CLI (apt-get install awscli if missing).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const PROJECT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(PROJECT, 'dist/cli.js');
const NODE = existsSync(join(PROJECT, 'node_modules/.bin/node')) ? join(PROJECT, 'node_modules/.bin/node') : process.execPath;
const MB = 1e6;
const GiB = 1024 ** 3;

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${(r.stderr || '').slice(-800)}`);
  return r;
}

/** Wall seconds and peak RSS (MB) of one process, under /usr/bin/time -v. */
function measured(cmd, args, opts = {}) {
  const start = performance.now();
  const r = spawnSync('/usr/bin/time', ['-v', cmd, ...args], { encoding: 'utf8', maxBuffer: 1 << 26, ...opts });
  const seconds = (performance.now() - start) / 1000;
  if (r.status !== 0) throw new Error(`${[cmd, ...args].slice(0, 4).join(' ')} exited ${r.status}: ${r.stderr.slice(-1500)}`);
  const kb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1] ?? NaN);
  return { seconds, rssMB: (kb * 1024) / MB, stdout: r.stdout };
}

function makeRegistry(storageYaml) {
  const dir = mkdtempSync(join(tmpdir(), 'mg-bench-reg-'));
  sh('git', ['init', '-q', '-b', 'main'], { cwd: dir });
  writeFileSync(join(dir, 'modelgate.yaml'), `apiVersion: modelgate.dev/v1\nkind: Registry\nstorage:\n${storageYaml}`);
  sh('git', ['add', '-A'], { cwd: dir });
  sh('git', ['-c', 'user.name=bench', '-c', 'user.email=b@b', 'commit', '-q', '-m', 'registry'], { cwd: dir });
  return dir;
}

const cli = (args, cwd, env = {}) =>
  measured(NODE, [CLI, ...args], {
    cwd,
    env: { ...process.env, ...env, GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'b@b', GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'b@b' },
  });

/** `n` files of 10 KB (random, each distinct) in 100 folders under .bench/, generated once. */
function ensureFolder(n) {
  const dir = join(PROJECT, '.bench', `dir-${n}x10k`);
  if (existsSync(join(dir, '.complete'))) return dir;
  rmSync(dir, { recursive: true, force: true });
  const block = randomBytes(10_000);
  for (let i = 0; i < n; i++) {
    const sub = join(dir, `part-${String(i % 100).padStart(2, '0')}`);
    if (i < 100) mkdirSync(sub, { recursive: true });
    block.writeUInt32LE(i, 0);
    writeFileSync(join(sub, `shard-${i}.bin`), block);
  }
  writeFileSync(join(dir, '.complete'), '');
  return dir;
}

/** The baseline: every file read and hashed in Node, 32 at a time, in its own process. */
const HASH_ALL = `
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
const root = process.argv[2];
const files = (await readdir(root, { recursive: true, withFileTypes: true })).filter((e) => e.isFile() && e.name !== '.complete').map((e) => join(e.parentPath, e.name));
let next = 0;
const out = [];
await Promise.all(Array.from({ length: 32 }, async () => {
  while (next < files.length) { const i = next++; out[i] = createHash('sha256').update(await readFile(files[i])).digest('hex'); }
}));
console.log(out.length);
`;

function ensureBlob(bytes) {
  const path = join(PROJECT, '.bench', `artifact-${bytes / GiB}g.bin`);
  if (existsSync(path) && statSync(path).size === bytes) return path;
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  const block = randomBytes(64 * 1024 * 1024);
  const fd = openSync(tmp, 'w');
  for (let off = 0, i = 0; off < bytes; off += block.length, i++) {
    block.writeUInt32LE(i, 0);
    writeSync(fd, block, 0, Math.min(block.length, bytes - off));
  }
  closeSync(fd);
  renameSync(tmp, path);
  return path;
}

function s3Env() {
  const status = spawnSync('bash', [join(PROJECT, 'scripts/s3-server.sh'), 'status'], { encoding: 'utf8' });
  if (status.status !== 0) return undefined;
  const env = {};
  for (const m of sh('bash', [join(PROJECT, 'scripts/s3-server.sh'), 'env']).stdout.matchAll(/export (\w+)=(\S+)/g)) env[m[1]] = m[2];
  return env;
}

/** The AWS CLI, installed from Debian's packages when missing (the bench only, never the tests). */
function awsCli() {
  if (spawnSync('aws', ['--version']).status === 0) return 'aws';
  spawnSync('apt-get', ['install', '-y', '-q', 'awscli'], { stdio: 'ignore' });
  return spawnSync('aws', ['--version']).status === 0 ? 'aws' : undefined;
}

export async function run({ log = (m) => process.stderr.write(m + '\n') } = {}) {
  const rows = [];
  if (!existsSync(CLI)) throw new Error('dist/cli.js missing: run npm run build first');
  const n = Number(process.env.BENCH_DIR_FILES ?? 100_000);
  log(`bigdir: generating .bench/dir-${n}x10k (once)`);
  const folder = ensureFolder(n);
  const script = join(mkdtempSync(join(tmpdir(), 'mg-bench-')), 'hash-all.mjs');
  writeFileSync(script, HASH_ALL);
  measured(NODE, [script, folder]); // warm the page cache for both
  const hash = measured(NODE, [script, folder]);
  const store = mkdtempSync(join(tmpdir(), 'mg-bench-store-'));
  const reg = makeRegistry(`  uri: ${pathToFileURL(store).href}\n`);
  const r = cli(['register', 'bigdir', folder, '--quiet'], reg);
  const label = `${n.toLocaleString('en-US')} files of 10 KB`;
  rows.push({
    name: `register a directory of ${label} to file://`,
    value: r.seconds,
    unit: 's',
    baseline: hash.seconds,
    baselineName: 'hashing the same files alone (Node, 32 at a time)',
    target: 2,
  });
  rows.push({ name: `peak memory, register a directory of ${label}`, value: r.rssMB, unit: 'MB', target: 512, pass: r.rssMB <= 512 });
  const again = cli(['register', 'bigdir', folder, '--quiet'], reg);
  rows.push({
    name: `register the same ${label} again (every file already stored)`,
    value: again.seconds,
    unit: 's',
    baseline: hash.seconds,
    baselineName: 'hashing alone (informative)',
    target: 3,
  });
  const out = join(mkdtempSync(join(tmpdir(), 'mg-bench-pull-')), 'm');
  const p = cli(['pull', 'bigdir@1', '-o', out, '--quiet'], reg);
  rows.push({
    name: `pull a directory of ${label} from file://, verified (informative)`,
    value: p.seconds,
    unit: 's',
    baseline: hash.seconds,
    baselineName: 'hashing alone',
    target: 3,
  });
  rows.push({ name: `peak memory, pull a directory of ${label}`, value: p.rssMB, unit: 'MB', target: 512, pass: p.rssMB <= 512 });
  rmSync(dirname(out), { recursive: true, force: true });
  rmSync(store, { recursive: true, force: true });
  rmSync(reg, { recursive: true, force: true });
  rmSync(dirname(script), { recursive: true, force: true });

  const env = s3Env();
  const aws = awsCli();
  if (!env || !aws) {
    rows.push({
      name: 'pull 1 GiB from S3, verified',
      skipped: !env ? 'S3 server not running (bash scripts/s3-server.sh start)' : 'no AWS CLI (apt-get install awscli)',
    });
    return rows;
  }
  const blob = ensureBlob(GiB);
  const bucket = `bench-pull-${Date.now().toString(36)}`;
  const awsEnv = { ...process.env, ...env };
  const endpoint = ['--endpoint-url', env.MODELGATE_S3_ENDPOINT];
  sh(aws, ['s3', 'mb', `s3://${bucket}`, ...endpoint], { env: awsEnv });
  const s3Reg = makeRegistry(`  uri: s3://${bucket}/registry\n  endpoint: ${env.MODELGATE_S3_ENDPOINT}\n  region: ${env.AWS_REGION}\n  forcePathStyle: true\n`);
  cli(['register', 'pull-1g', blob, '--quiet'], s3Reg, env);
  const key = sh('git', ['grep', '-h', 'uri:', 'HEAD', '--', 'models/pull-1g/versions/1.yaml'], { cwd: s3Reg })
    .stdout.trim()
    .replace(/^.*uri: /, '');
  const dir = mkdtempSync(join(tmpdir(), 'mg-bench-pull-'));
  const times = { aws: [], mg: [], rss: [] };
  for (let i = 0; i < 3; i++) {
    rmSync(join(dir, 'a.bin'), { force: true });
    times.aws.push(measured(aws, ['s3', 'cp', '--quiet', key, join(dir, 'a.bin'), ...endpoint], { env: awsEnv }).seconds);
    rmSync(join(dir, 'm.bin'), { force: true });
    const m = cli(['pull', 'pull-1g@1', '-o', join(dir, 'm.bin'), '--quiet'], s3Reg, env);
    times.mg.push(m.seconds);
    times.rss.push(m.rssMB);
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[1];
  rows.push({
    name: 'pull 1 GiB from S3, verified (median of 3)',
    value: median(times.mg),
    unit: 's',
    baseline: median(times.aws),
    baselineName: '`aws s3 cp` down (median of 3)',
    target: 1.1,
  });
  rows.push({ name: 'peak memory, pull 1 GiB from S3', value: Math.max(...times.rss), unit: 'MB', target: 256, pass: Math.max(...times.rss) <= 256 });
  rmSync(dir, { recursive: true, force: true });
  rmSync(s3Reg, { recursive: true, force: true });
  sh(aws, ['s3', 'rb', '--force', `s3://${bucket}`, ...endpoint], { env: awsEnv });
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const r of await run()) {
    if (r.value === undefined) console.log(`${r.name}: could not run (${r.skipped})`);
    else if (r.baseline !== undefined)
      console.log(
        `${r.name}: ${r.value.toFixed(2)} ${r.unit} ÷ ${r.baselineName} ${r.baseline.toFixed(2)} ${r.unit} = ${(r.value / r.baseline).toFixed(2)}×  (target ≤ ${r.target}×: ${r.value / r.baseline <= r.target ? 'pass' : 'MISS'})`,
      );
    else
      console.log(
        `${r.name}: ${r.value.toFixed(2)} ${r.unit}${r.target !== undefined ? `  (target ≤ ${r.target} ${r.unit}: ${r.pass ? 'pass' : 'MISS'})` : ''}`,
      );
  }
}
