#!/usr/bin/env node
// Artifact speed (issue 11), whole processes, each figure a ratio to a baseline measured in the same run:
//   register 1 GiB to S3 (Swift, Ceph RGW) ≤ 1.15 × a plain lib-storage upload of the same bytes
//     (same 16 MiB parts, 4 at a time) to the same server
//   register 1 GiB to file://            ≤ 1.2 × max(Node sha256 of the file alone, copy + fdatasync)
//   register bytes the store already holds ≤ 1.15 × Node sha256 of the file alone
//   peak memory of register ≤ 256 MB at 1 GiB and at 4 GiB
//   commit + push one new manifest into a registry of 100,000 versions ≤ 2 s
// Run directly (`node bench/artifacts.bench.mjs`, after `npm run build`) or through bench/run.mjs.
// Set BENCH_SKIP_4G=1 to skip the 4 GiB figure (it writes 4 GiB locally and to the S3 server).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, writeSync, closeSync, renameSync, rmSync, statSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const PROJECT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(PROJECT, 'dist/cli.js');
const NODE = existsSync(join(PROJECT, 'node_modules/.bin/node')) ? join(PROJECT, 'node_modules/.bin/node') : process.execPath;
const GiB = 1024 ** 3;
const MB = 1e6;

/** A file of `bytes` pseudo-random bytes under .bench/, generated once: 64 MiB of random data, each copy salted. */
function ensureBlob(bytes) {
  const path = join(PROJECT, '.bench', `artifact-${bytes / GiB}g.bin`);
  if (existsSync(path) && statSync(path).size === bytes) return path;
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  const block = randomBytes(64 * 1024 * 1024);
  const fd = openSync(tmp, 'w');
  for (let off = 0, i = 0; off < bytes; off += block.length, i++) {
    block.writeUInt32LE(i, 0); // no two blocks alike: nothing can deduplicate or compress them
    writeSync(fd, block, 0, Math.min(block.length, bytes - off));
  }
  closeSync(fd);
  renameSync(tmp, path);
  return path;
}

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${(r.stderr || '').slice(-800)}`);
  return r;
}

/** No contender takes this long on a working server; a stalled one ends the row, not the run. */
const STALL_MS = 10 * 60 * 1000;

/** Runs a command under /usr/bin/time -v: wall seconds and peak RSS (MB) of the process. */
function measured(cmd, args, opts = {}) {
  const start = performance.now();
  const r = spawnSync('/usr/bin/time', ['-v', cmd, ...args], { encoding: 'utf8', maxBuffer: 1 << 26, timeout: STALL_MS, killSignal: 'SIGKILL', ...opts });
  const seconds = (performance.now() - start) / 1000;
  if (r.error) throw new Error(`${args.slice(0, 3).join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${args.slice(0, 3).join(' ')} exited ${r.status}: ${r.stderr.slice(-1500)}`);
  const kb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1] ?? NaN);
  return { seconds, rssMB: (kb * 1024) / MB, stdout: r.stdout };
}

/** The environment of a running loopback S3 server (AWS_* credentials, endpoint, region), or undefined. */
function s3Env(server) {
  const script = join(PROJECT, 'scripts', server === 'rgw' ? 'ceph-rgw.sh' : 's3-server.sh');
  if (spawnSync('bash', [script, 'status'], { encoding: 'utf8' }).status !== 0) return undefined;
  const raw = {};
  for (const m of sh('bash', [script, 'env']).stdout.matchAll(/export (\w+)=(\S+)/g)) raw[m[1]] = m[2];
  if (server !== 'rgw') return raw;
  return {
    MODELGATE_S3_ENDPOINT: raw.MODELGATE_RGW_ENDPOINT,
    AWS_ACCESS_KEY_ID: raw.MODELGATE_RGW_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: raw.MODELGATE_RGW_SECRET_ACCESS_KEY,
    AWS_REGION: raw.MODELGATE_RGW_REGION,
  };
}

/** Every registry made here, removed at the end of the run. */
const registries = [];

function makeRegistry(storageYaml) {
  const dir = mkdtempSync(join(tmpdir(), 'mg-bench-reg-'));
  registries.push(dir);
  sh('git', ['init', '-q', '-b', 'main'], { cwd: dir });
  writeFileSync(join(dir, 'modelgate.yaml'), `apiVersion: modelgate.dev/v1\nkind: Registry\nstorage:\n${storageYaml}`);
  sh('git', ['add', '-A'], { cwd: dir });
  sh('git', ['-c', 'user.name=bench', '-c', 'user.email=b@b', 'commit', '-q', '-m', 'registry'], { cwd: dir });
  return dir;
}

/** A tiny script for the baselines, run as its own process like register is. */
const BASELINE = `
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
const [mode, file, endpoint, bucket, key] = process.argv.slice(2);
if (mode === 'sha256') {
  const h = createHash('sha256');
  for await (const c of createReadStream(file, { highWaterMark: 1 << 20 })) h.update(c);
  console.log(h.digest('hex'));
} else if (mode === 'upload') {
  // What register's S3 store does for a large file, minus the hashing: 16 MiB parts, 4 at a time.
  const { S3Client } = await import('@aws-sdk/client-s3');
  const { Upload } = await import('@aws-sdk/lib-storage');
  const client = new S3Client({ endpoint, region: process.env.AWS_REGION, forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
  await new Upload({ client, params: { Bucket: bucket, Key: key, Body: createReadStream(file, { highWaterMark: 1 << 20 }) },
    partSize: 16 * 1024 * 1024, queueSize: 4, leavePartsOnError: false }).done();
  client.destroy();
}
`;

async function s3Admin(env) {
  const { S3Client, CreateBucketCommand, ListObjectsV2Command, DeleteObjectCommand } = await import(
    pathToFileURL(join(PROJECT, 'node_modules/@aws-sdk/client-s3/dist-cjs/index.js')).href
  );
  const client = new S3Client({
    endpoint: env.MODELGATE_S3_ENDPOINT,
    region: env.AWS_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    async bucket() {
      const name = `bench-artifacts-${Date.now().toString(36)}`;
      await client.send(new CreateBucketCommand({ Bucket: name }));
      return name;
    },
    async empty(bucket) {
      const list = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
      for (const o of list.Contents ?? []) await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key }));
    },
    close: () => client.destroy(),
  };
}

export async function run({ log = (m) => process.stderr.write(m + '\n') } = {}) {
  const rows = [];
  if (!existsSync(CLI)) throw new Error('dist/cli.js missing: run npm run build first');
  log('artifacts: generating .bench/artifact-1g.bin (once)');
  const blob = ensureBlob(GiB);
  const baseline = join(PROJECT, '.bench', 'artifact-baseline.mjs');
  writeFileSync(baseline, BASELINE);
  const cli = (args, cwd, env) => measured(NODE, [CLI, ...args], { cwd, env: { ...process.env, ...env } });
  const best = (runs) => Math.min(...runs.map((r) => r.seconds));
  const peak = (runs) => Math.max(...runs.map((r) => r.rssMB));
  const ratio = (name, value, baselineName, base, target) => ({ name, value, unit: 's', baselineName, baseline: base, target, pass: value / base <= target });

  // Warm the page cache so every contender reads from memory alike.
  const sha = measured(NODE, [baseline, 'sha256', blob]);
  const sha2 = measured(NODE, [baseline, 'sha256', blob]);
  const shaSeconds = Math.min(sha.seconds, sha2.seconds);
  rows.push({ name: 'sha256 of 1 GiB in Node (baseline)', value: shaSeconds, unit: 's' });

  // file:// store. Writing a fresh GiB into the page cache costs this VM anywhere from 0.5 to 3 s
  // of kernel time from one run to the next, so the durable copy and register run in turn, twice,
  // and each figure is its best. A copy is durable, as register's must be before a manifest may
  // promise the bytes; each contender starts with no dirty pages of anyone else's (`sync`).
  let durableSeconds = Infinity;
  const fileRuns = [];
  let fileReg;
  let storeDir;
  for (let i = 0; i < 2; i++) {
    const copyDir = mkdtempSync(join(tmpdir(), 'mg-bench-copy-'));
    const copyTarget = join(copyDir, 'plain-copy.bin');
    sh('sync', []);
    const t = performance.now();
    copyFileSync(blob, copyTarget);
    sh('sync', ['-d', copyTarget]);
    durableSeconds = Math.min(durableSeconds, (performance.now() - t) / 1000);
    rmSync(copyDir, { recursive: true, force: true });
    // A fresh store and registry each time: the bytes are new to both.
    if (storeDir) rmSync(storeDir, { recursive: true, force: true });
    storeDir = mkdtempSync(join(tmpdir(), 'mg-bench-store-'));
    fileReg = makeRegistry(`  uri: ${pathToFileURL(storeDir).href}\n`);
    sh('sync', []);
    fileRuns.push(cli(['register', 'bench-file', blob, '--quiet'], fileReg));
  }
  rows.push({ name: 'copy + fdatasync of 1 GiB (baseline, best of 2)', value: durableSeconds, unit: 's' });
  const floor = Math.max(shaSeconds, durableSeconds);
  rows.push(ratio('register 1 GiB to file:// (best of 2)', best(fileRuns), 'max(sha256 alone, copy + fdatasync)', floor, 1.2));
  rows.push({ name: 'peak memory, register 1 GiB to file://', value: peak(fileRuns), unit: 'MB', target: 256, pass: peak(fileRuns) <= 256 });
  // The same bytes as the model's next versions: hashed once, found stored, nothing copied.
  const held = (model, reg, env) => best([0, 1].map(() => cli(['register', model, blob, '--quiet'], reg, env)));
  rows.push(ratio('register bytes the file:// store already holds (best of 2)', held('bench-file', fileReg), 'sha256 alone', shaSeconds, 1.15));
  rmSync(storeDir, { recursive: true, force: true });

  for (const [server, label] of [
    ['swift', 'Swift'],
    ['rgw', 'Ceph RGW'],
  ]) {
    const env = s3Env(server);
    if (!env) {
      log(`artifacts: the loopback ${label} server is not running (npm test starts it): its rows could not run`);
      rows.push({
        name: `register 1 GiB to ${label}`,
        skipped: `${label} server not running (bash scripts/${server === 'rgw' ? 'ceph-rgw' : 's3-server'}.sh start)`,
      });
      continue;
    }
    const admin = await s3Admin(env);
    try {
      const bucket = await admin.bucket();
      await s3Rows(admin, bucket, env, label, server);
    } catch (e) {
      const reason = String(e?.message ?? e).split('\n')[0];
      log(`artifacts: the ${label} rows stopped: ${reason}`);
      rows.push({ name: `register 1 GiB to ${label}`, skipped: reason.slice(0, 200) });
    } finally {
      admin.close();
    }
  }

  async function s3Rows(admin, bucket, env, label, server) {
    const upload = () =>
      measured(NODE, [baseline, 'upload', blob, env.MODELGATE_S3_ENDPOINT, bucket, 'plain/blob.bin'], { cwd: PROJECT, env: { ...process.env, ...env } })
        .seconds;
    // In turn, twice, each figure its best: the loopback servers share the two cores.
    const s3Config = `  uri: s3://${bucket}/registry\n  endpoint: ${env.MODELGATE_S3_ENDPOINT}\n  region: ${env.AWS_REGION}\n  forcePathStyle: true\n`;
    let up = Infinity;
    let s3Reg;
    const s3Runs = [];
    for (let i = 0; i < 2; i++) {
      up = Math.min(up, upload());
      await admin.empty(bucket);
      s3Reg = makeRegistry(s3Config);
      s3Runs.push(cli(['register', 'bench-s3', blob, '--quiet'], s3Reg, env));
      if (i === 0) await admin.empty(bucket);
    }
    rows.push(
      ratio(`register 1 GiB to ${label} (best of 2)`, best(s3Runs), 'plain lib-storage upload of the same bytes (16 MiB parts, 4 at a time)', up, 1.15),
    );
    rows.push({ name: `peak memory, register 1 GiB to ${label}`, value: peak(s3Runs), unit: 'MB', target: 256, pass: peak(s3Runs) <= 256 });
    rows.push(ratio(`register bytes ${label} already holds (best of 2)`, held('bench-s3', s3Reg, env), 'sha256 alone', shaSeconds, 1.15));
    await admin.empty(bucket);
    if (server === 'swift') {
      if (!process.env.BENCH_SKIP_4G) {
        log('artifacts: generating .bench/artifact-4g.bin (once) and registering it');
        const big = ensureBlob(4 * GiB);
        const r4 = cli(['register', 'bench-s3-4g', big, '--quiet'], s3Reg, env);
        rows.push({ name: `peak memory, register 4 GiB to ${label}`, value: r4.rssMB, unit: 'MB', target: 256, pass: r4.rssMB <= 256 });
        rows.push({ name: `register 4 GiB to ${label} (time)`, value: r4.seconds, unit: 's' });
        await admin.empty(bucket);
      } else {
        rows.push({ name: `peak memory, register 4 GiB to ${label}`, skipped: 'BENCH_SKIP_4G set' });
      }
    }
  }

  // commit + push into 100,000 versions
  try {
    const { ensureRegistry } = await import(pathToFileURL(join(PROJECT, 'bench/registry.bench.mjs')).href);
    log('artifacts: preparing a 100,000-version registry with a remote');
    const big = ensureRegistry(100);
    const root = mkdtempSync(join(tmpdir(), 'mg-bench-push-'));
    sh('git', ['clone', '-q', '--bare', big, join(root, 'remote.git')]);
    const work = join(root, 'work');
    sh('git', ['clone', '-q', join(root, 'remote.git'), work]);
    const store = join(root, 'store');
    writeFileSync(join(work, 'modelgate.yaml'), `apiVersion: modelgate.dev/v1\nkind: Registry\nstorage: {uri: ${pathToFileURL(store).href}}\n`);
    sh('git', ['-c', 'user.name=bench', '-c', 'user.email=b@b', 'commit', '-q', '-am', 'file store'], { cwd: work });
    sh('git', ['push', '-q', 'origin', 'main'], { cwd: work });
    sh('git', ['config', 'user.name', 'bench'], { cwd: work });
    sh('git', ['config', 'user.email', 'b@b'], { cwd: work });
    writeFileSync(join(root, 'tiny.onnx'), randomBytes(4096));
    const times = [];
    for (let i = 0; i < 3; i++) times.push(cli(['register', 'model-000', join(root, 'tiny.onnx'), '--push', '--quiet'], work).seconds);
    times.sort((a, b) => a - b);
    rows.push({ name: 'register + commit + push into 100,000 versions', value: times[1], unit: 's', target: 2, pass: times[1] <= 2 });
    rmSync(root, { recursive: true, force: true });
  } catch (e) {
    rows.push({ name: 'register + commit + push into 100,000 versions', skipped: String(e?.message ?? e).split('\n')[0] });
  }
  for (const dir of registries.splice(0)) rmSync(dir, { recursive: true, force: true });
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const rows = await run();
  for (const r of rows) {
    if (r.value === undefined) console.log(`${r.name}: could not run (${r.skipped})`);
    else if (r.baseline !== undefined)
      console.log(
        `${r.name}: ${r.value.toFixed(2)} s ÷ ${r.baselineName} ${r.baseline.toFixed(2)} s = ${(r.value / r.baseline).toFixed(2)}× (target ≤ ${r.target}×: ${r.pass ? 'pass' : 'MISS'})`,
      );
    else
      console.log(
        `${r.name}: ${r.value.toFixed(2)} ${r.unit}${r.target !== undefined ? `  (target ≤ ${r.target} ${r.unit}: ${r.pass ? 'pass' : 'MISS'})` : ''}`,
      );
  }
}
