import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlflowTrackingClient } from '../src/mlflow/client.js';
import { deletedVersions, mlflowTime, planMoves, runValues, type MlflowModelVersion, type NotCarried } from '../src/mlflow/records.js';
import type { PromotionPolicy } from '../src/manifest/types.js';
import { runAction } from './helpers/action.js';
import { cli, git, makeRegistry, tempDir } from './helpers/artifacts.js';
import { pullRequestEvent, pullRequestReviewEvent, writeEventFile } from './helpers/github.js';
import { prRemote, type PrRemote } from './helpers/pr-remote.js';

const ROOT = resolve(import.meta.dirname, '..');
const VENV = join(ROOT, '.venv');
const CLI = join(ROOT, 'dist/cli.js');

describe('MLflow records (pure)', () => {
  const v = (version: string, stage: string, updated: number): MlflowModelVersion => ({
    name: 'm',
    version,
    current_stage: stage,
    last_updated_timestamp: updated,
  });

  it('keeps one version in Production (the one updated last), archives the others and says so; Production moves come last', () => {
    const notCarried: NotCarried[] = [];
    const versions = [v('1', 'Production', 30), v('2', 'Production', 20), v('3', 'Staging', 40)];
    const imported = new Map([
      ['1', 1],
      ['2', 2],
      ['3', 3],
    ]);
    const moves = planMoves({ name: 'm', aliases: [{ alias: 'champion', version: '2' }] }, versions, imported, notCarried);
    expect(moves.map((m) => (m.kind === 'stage' ? `${m.version}:${m.to}` : `@${m.alias}`))).toEqual(['2:Archived', '3:Staging', '1:Production']);
    expect(notCarried.map((n) => n.what)).toEqual(['m version 2', 'm alias champion']);
  });

  it('finds deleted versions as the gaps in MLflow numbering', () => {
    expect(deletedVersions([v('1', 'None', 1), v('4', 'None', 1), v('2', 'None', 1)])).toEqual([3]);
    expect(deletedVersions([])).toEqual([]);
  });

  it('reads a run: finite metrics, params as text, user tags; reports what a manifest cannot hold', () => {
    const notCarried: NotCarried[] = [];
    const values = runValues(
      {
        info: { run_id: 'r', run_name: 'best', experiment_id: '1' },
        data: {
          metrics: [
            { key: 'auc', value: 0.9 },
            { key: 'loss', value: 'NaN' },
            { key: 'bad key', value: 1 },
          ],
          params: [{ key: 'lr', value: '1.10' }],
          tags: [
            { key: 'mlflow.user', value: 'x' },
            { key: 'owner', value: 'maria' },
            { key: 'Team Name', value: 'y' },
          ],
        },
      },
      'm version 1',
      notCarried,
    );
    expect(values).toEqual({
      metrics: { auc: 0.9 },
      parameters: { lr: '1.10' },
      annotations: { 'mlflow/run-name': 'best', 'mlflow/experiment-id': '1', 'mlflow-run/owner': 'maria' },
    });
    expect(notCarried.map((n) => n.what)).toEqual(['m version 1 metric loss', 'm version 1 metric bad key', 'm version 1 run tag Team Name']);
    expect(mlflowTime('1796676171364')).toBe('2026-12-07T20:42:51Z');
  });
});

interface Expected {
  passed: string[];
  models: Record<
    string,
    {
      aliases: Record<string, string>;
      versions: Record<
        string,
        {
          stage: string;
          run_id: string;
          tags: Record<string, string>;
          description: string;
          created: number;
          metrics: Record<string, number>;
          params: Record<string, string>;
        }
      >;
    }
  >;
}

/**
 * A policy an MLflow import can pass: a version may arrive in any stage (Production once
 * ml-governance approves), aliases need carol, a new model's model.yaml is a setting. The
 * registrations are authored by MLflow's users, who are no GitHub accounts here (unlinkedCommits).
 */
const IMPORT_POLICY: PromotionPolicy = {
  apiVersion: 'modelgate.dev/v1',
  kind: 'PromotionPolicy',
  rules: [
    { name: 'register', to: 'None' },
    { name: 'to-staging', to: 'Staging', from: ['None'] },
    { name: 'archive', to: 'Archived', from: ['None', 'Staging', 'Production'] },
    {
      name: 'import-production',
      to: 'Production',
      from: ['None', 'Staging'],
      allowSkip: true,
      approvals: [{ count: 1, teams: ['ml-governance'] }],
      artifact: 'full',
      unlinkedCommits: 'allow',
    },
    { name: 'aliases', alias: '*', approvals: [{ count: 1, users: ['carol'] }], unlinkedCommits: 'allow' },
    { name: 'model-settings', paths: ['models/*/model.yaml'] },
  ],
};

const IMPORT_BRANCH = 'modelgate/import/mlflow';

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => done(port));
    });
  });
}

/** The versions of the registry at `dir` by the MLflow version they came from (one entry per manifest). */
async function importedKeys(dir: string): Promise<string[]> {
  const listed = await cli(dir, ['list', '--json']);
  return (listed.json as Array<{ annotations: Record<string, string> }>).map((v) => v.annotations['mlflow/model-version']!).sort();
}

describe('import mlflow from a real MLflow tracking server', () => {
  let tracking = '';
  let server: ReturnType<typeof spawn> | undefined;
  let expected: Expected;
  let work = '';

  beforeAll(async () => {
    execFileSync('bash', [join(ROOT, 'scripts/python-env.sh')], { cwd: ROOT, stdio: 'inherit' });
    work = tempDir('mg-mlflow-');
    const port = await freePort();
    tracking = `http://127.0.0.1:${port}`;
    server = spawn(
      join(VENV, 'bin/mlflow'),
      [
        'server',
        '--backend-store-uri',
        `sqlite:///${join(work, 'mlflow.db')}`,
        '--artifacts-destination',
        join(work, 'mlartifacts'),
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        '--workers',
        '1',
      ],
      { cwd: work, stdio: 'ignore', detached: true },
    );
    for (;;) {
      const ok = await fetch(`${tracking}/health`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (server.exitCode !== null) throw new Error(`mlflow server exited ${server.exitCode}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    const out = join(work, 'expected.json');
    execFileSync(join(VENV, 'bin/python'), [join(ROOT, 'test/helpers/mlflow-fill.py'), out], {
      cwd: work,
      env: { ...process.env, MLFLOW_TRACKING_URI: tracking },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    expected = JSON.parse(readFileSync(out, 'utf8')) as Expected;
  }, 900_000);

  afterAll(() => {
    if (server?.pid) process.kill(-server.pid, 'SIGKILL');
  });

  const registry = () => makeRegistry({ uri: pathToFileURL(tempDir('mg-mlflow-store-')).href });

  it('carries every version, stage, alias, tag, run and time over; history, show --at and list --where answer what MLflow answered; a second run imports nothing', async () => {
    const dir = registry();
    const first = await cli(dir, ['import', 'mlflow', '--tracking-uri', tracking, '--json']);
    expect(first.code, first.stderr).toBe(0);
    const report = first.json as { imported: Array<{ what: string }>; notCarried: Array<{ what: string; reason: string }> };
    expect(report.notCarried.map((n) => n.what)).toEqual(['fraud-detector version 3']);
    expect((await cli(dir, ['validate'])).code).toBe(0);

    for (const [name, model] of Object.entries(expected.models)) {
      for (const [number, mv] of Object.entries(model.versions)) {
        const shown = await cli(dir, ['show', `${name}@${number}`, '--json']);
        expect(shown.code, shown.stderr).toBe(0);
        const v = shown.json as Record<string, unknown> & { lineage: { run: { id: string } }; annotations: Record<string, string>; signature?: unknown };
        expect(v.stage).toBe(mv.stage);
        expect(v.description).toBe(mv.description);
        expect(v.createdAt).toBe(mlflowTime(mv.created));
        expect(v.metrics).toEqual(mv.metrics);
        expect(v.parameters).toEqual(mv.params);
        expect(v.lineage.run.id).toBe(mv.run_id);
        expect(v.format).toBe('mlflow');
        expect(v.signature).toBeDefined();
        expect(v.annotations['mlflow/model-version']).toBe(`${name}/${number}`);
        for (const [key, value] of Object.entries(mv.tags)) expect(v.annotations[`mlflow-tag/${key}`]).toBe(value);
      }
      for (const [alias, number] of Object.entries(model.aliases)) {
        const shown = await cli(dir, ['show', `${name}@${alias}`, '--json']);
        expect((shown.json as { version: number }).version).toBe(Number(number));
      }
    }
    // `pull` verifies the copied bytes against the digest the manifest records.
    const pulled = await cli(dir, ['pull', 'fraud-detector@champion', '-o', join(tempDir(), 'model')]);
    expect(pulled.code, pulled.stderr).toBe(0);

    // list --where answers MLflow's search_model_versions("tags.validation_status = 'passed'").
    const listed = await cli(dir, ['list', '--where', "annotations.`mlflow-tag/validation_status` = 'passed'", '--json']);
    expect((listed.json as Array<{ model: string; version: number }>).map((v) => `${v.model}/${v.version}`).sort()).toEqual(expected.passed);

    // history starts where MLflow's record starts: the registrations in creation order, at their times.
    const history = (await cli(dir, ['history', 'fraud-detector', '--json'])).json as Array<{ date: string; version: number; from: string | null; to: string }>;
    const created = Object.entries(expected.models['fraud-detector']!.versions).sort(([, a], [, b]) => a.created - b.created);
    expect(history.filter((h) => h.from === null && h.to === 'None').map((h) => [h.version, h.date])).toEqual(
      created.map(([n, v]) => [Number(n), mlflowTime(v.created)]),
    );

    // show --at the time fraud-detector's version 2 was registered: it was in None, version 4 did not exist yet.
    const at = mlflowTime(expected.models['fraud-detector']!.versions['2']!.created)!;
    const then = await cli(dir, ['show', 'fraud-detector@2', '--at', at, '--json']);
    expect((then.json as { stage: string }).stage).toBe('None');
    expect((await cli(dir, ['show', 'fraud-detector@4', '--at', at])).code).toBe(1);
    const now = await cli(dir, ['show', 'fraud-detector@production', '--json']);
    expect((now.json as { version: number }).version).toBe(2);

    const head = git(dir, 'rev-parse', 'HEAD');
    const second = await cli(dir, ['import', 'mlflow', '--tracking-uri', tracking, '--json']);
    expect(second.code, second.stderr).toBe(0);
    expect((second.json as { imported: unknown[] }).imported).toEqual([]);
    expect(git(dir, 'rev-parse', 'HEAD')).toBe(head);
  }, 600_000);

  it('the MLflow port: typed errors for unknown runs, unread schemes, a server that is down or stalls; local sources copied', async () => {
    const client = new MlflowTrackingClient(tracking, {});
    expect(await client.run('0123456789abcdef0123456789abcdef')).toBeUndefined();
    await expect(client.resolveSource('runs:/0123456789abcdef0123456789abcdef/model')).rejects.toMatchObject({ code: 'E_MLFLOW_SOURCE' });
    const dest = tempDir();
    await expect(client.download('ftp://host/model', join(dest, 'a'))).rejects.toMatchObject({ code: 'E_MLFLOW_SOURCE' });
    const folder = tempDir();
    writeFileSync(join(folder, 'MLmodel'), 'flavors: {}\n');
    expect(await client.download(pathToFileURL(folder).href, join(dest, 'b'))).toBe(join(dest, 'b'));
    expect(readFileSync(join(dest, 'b', 'MLmodel'), 'utf8')).toBe('flavors: {}\n');

    const down = new MlflowTrackingClient(`http://127.0.0.1:${await freePort()}`, {});
    await expect(down.registeredModels()).rejects.toMatchObject({ code: 'E_MLFLOW', exit: 3 });
    // A server that takes the connection and never answers: abandoned after MODELGATE_IO_TIMEOUT.
    const silent = createServer(() => {});
    await new Promise<void>((done) => silent.listen(0, '127.0.0.1', done));
    try {
      const stalled = new MlflowTrackingClient(`http://127.0.0.1:${(silent.address() as { port: number }).port}`, { MODELGATE_IO_TIMEOUT: '1' });
      await expect(stalled.registeredModels()).rejects.toMatchObject({ code: 'E_IO_TIMEOUT', exit: 3 });
    } finally {
      silent.close();
    }
  }, 120_000);

  it('--dry-run lists what it would import and commits nothing; --model picks models', async () => {
    const dir = registry();
    const head = git(dir, 'rev-parse', 'HEAD');
    const dry = await cli(dir, ['import', 'mlflow', '--tracking-uri', tracking, '--model', 'iris', '--dry-run', '--json']);
    expect(dry.code, dry.stderr).toBe(0);
    expect((dry.json as { imported: Array<{ what: string }> }).imported.map((i) => i.what)).toEqual([
      'iris version 1',
      'iris version 2',
      'iris version 3',
      'iris version 2',
    ]);
    expect(git(dir, 'rev-parse', 'HEAD')).toBe(head);
    const bad = await cli(dir, ['import', 'mlflow', '--tracking-uri', 'ftp://x']);
    expect(bad.code).toBe(2);
  }, 300_000);

  it('a run killed midway (SIGKILL) and restarted completes without duplicates', async () => {
    const dir = registry();
    const before = Number(git(dir, 'rev-list', '--count', 'HEAD'));
    // Batches of two versions: HEAD moves every second version, so the kill lands between batches or inside one.
    const child = spawn(process.execPath, [CLI, 'import', 'mlflow', '--tracking-uri', tracking, '--batch', '2'], { cwd: dir, stdio: 'ignore' });
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    // Killed once four versions are committed, wherever the fifth is.
    for (;;) {
      if (Number(git(dir, 'rev-list', '--count', 'HEAD')) >= before + 4) break;
      if (child.exitCode !== null) throw new Error('the import ended before it could be killed');
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGKILL');
    await exited;
    const partial = await importedKeys(dir);
    expect(partial.length).toBeGreaterThanOrEqual(4);
    expect(partial.length).toBeLessThan(11);

    const again = await cli(dir, ['import', 'mlflow', '--tracking-uri', tracking, '--json']);
    expect(again.code, again.stderr).toBe(0);
    const all = Object.entries(expected.models)
      .flatMap(([name, m]) => Object.keys(m.versions).map((n) => `${name}/${n}`))
      .sort();
    expect(await importedKeys(dir)).toEqual(all);
    const registrations = git(dir, 'log', '--format=%s')
      .split('\n')
      .filter((s) => s.startsWith('register '));
    expect(registrations).toHaveLength(all.length);
    expect((await cli(dir, ['validate'])).code).toBe(0);
    expect((await cli(dir, ['show', 'churn@champion', '--json'])).json).toMatchObject({ version: 3, stage: 'Production' });
  }, 600_000);

  it('--push lands each batch with one push; two imports racing into one remote carry every version over once', async () => {
    const seed = registry();
    const bare = join(tempDir('mg-mlflow-remote-'), 'registry.git');
    git(seed, 'clone', '-q', '--bare', seed, bare);
    const clones = [0, 1].map(() => {
      const dir = join(tempDir('mg-mlflow-clone-'), 'r');
      git(tempDir(), 'clone', '-q', bare, dir);
      git(dir, 'config', 'user.name', 'importer');
      git(dir, 'config', 'user.email', 'importer@example.com');
      return dir;
    });
    const runs = await Promise.all(clones.map((dir) => cli(dir, ['import', 'mlflow', '--tracking-uri', tracking, '--push', '--batch', '3', '--json'])));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const all = Object.entries(expected.models)
      .flatMap(([name, m]) => Object.keys(m.versions).map((n) => `${name}/${n}`))
      .sort();
    const check = clones[0]!;
    git(check, 'pull', '-q', '--ff-only', 'origin', 'main');
    expect(await importedKeys(check)).toEqual(all);
    const registrations = git(check, 'log', '--format=%s')
      .split('\n')
      .filter((s) => s.startsWith('register '));
    expect(registrations).toHaveLength(all.length);
    // Between them the two runs reported each version once.
    const reported = runs.flatMap((r) =>
      (r.json as { imported: Array<{ what: string; change: string }> }).imported.filter((i) => i.change.startsWith('Register ')),
    );
    expect(reported).toHaveLength(all.length);
    expect((await cli(check, ['validate'])).code).toBe(0);
    const bad = await cli(check, ['import', 'mlflow', '--tracking-uri', tracking, '--batch', '0']);
    expect(bad.code).toBe(2);
  }, 600_000);
  it('--pr: one import branch, one commit per version in creation order, one pull request the built Action judges; a killed run resumes it, a re-run adds nothing, after the merge nothing is imported until MLflow changes', async () => {
    const remote: PrRemote = await prRemote({ uri: pathToFileURL(tempDir('mg-mlflow-store-')).href }, IMPORT_POLICY);
    try {
      const bare = remote.ghRepo.gitDir!;
      const onBranch = () => {
        try {
          return Number(
            execFileSync('git', ['--git-dir', bare, 'rev-list', '--count', `main..${IMPORT_BRANCH}`], {
              encoding: 'utf8',
              stdio: ['ignore', 'pipe', 'ignore'],
            }),
          );
        } catch {
          return 0;
        }
      };
      const pulls = async () => {
        const res = await fetch(`${remote.gh.url}/repos/acme/model-registry/pulls?state=all`, {
          headers: { authorization: `token ${remote.env.GITHUB_TOKEN}` },
        });
        return (await res.json()) as Array<{ number: number; state: string; head: { ref: string; sha: string }; title: string; body: string }>;
      };

      // Killed once four commits are on the import branch (batches of two), before any pull request opened.
      const child = spawn(process.execPath, [CLI, 'import', 'mlflow', '--tracking-uri', tracking, '--pr', '--batch', '2'], {
        cwd: remote.work,
        env: { ...process.env, ...remote.env },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (b) => (stderr += b));
      const exited = new Promise<void>((done) => child.once('exit', () => done()));
      for (;;) {
        if (onBranch() >= 4) break;
        if (child.exitCode !== null) throw new Error(`the import ended before it could be killed: ${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      child.kill('SIGKILL');
      await exited;
      const killedAt = onBranch();
      expect(killedAt).toBeGreaterThanOrEqual(4);
      expect(killedAt).toBeLessThan(11);
      expect(await pulls()).toEqual([]);

      const all = Object.entries(expected.models)
        .flatMap(([name, m]) => Object.entries(m.versions).map(([n, v]) => ({ key: `${name}/${n}`, created: v.created })))
        .sort((a, b) => a.created - b.created || a.key.localeCompare(b.key));
      const resumed = await cli(remote.work, ['import', 'mlflow', '--tracking-uri', tracking, '--pr', '--json'], remote.env);
      expect(resumed.code, resumed.stderr).toBe(0);
      const opened = resumed.json as { pullRequest: { number: number; created: boolean }; branch: string; gate: string; notCarried: Array<{ what: string }> };
      expect(opened.branch).toBe(IMPORT_BRANCH);
      expect(opened.pullRequest.created).toBe(true);
      expect(opened.notCarried.map((n) => n.what)).toContain('fraud-detector version 3');

      // The branch: every version once, in MLflow's creation order, at MLflow's times; then the moves. Main is untouched.
      const check = tempDir('mg-mlflow-check-');
      execFileSync('git', ['clone', '-q', '--bare', bare, check]);
      const log = git(check, 'log', '--reverse', '--format=%aI%x09%s', `main..${IMPORT_BRANCH}`)
        .trim()
        .split('\n')
        .map((l) => l.split('\t') as [string, string]);
      const registrations = log.filter(([, s]) => s.startsWith('register '));
      expect(registrations.map(([, s]) => /\(MLflow (\S+) version (\d+)\)$/.exec(s)!.slice(1).join('/'))).toEqual(all.map((a) => a.key));
      expect(registrations.map(([at]) => new Date(at).toISOString().replace(/\.\d{3}Z$/, 'Z'))).toEqual(all.map((a) => mlflowTime(a.created)));
      expect(log.length).toBeGreaterThan(registrations.length);
      expect(git(check, 'rev-list', '--count', 'main').trim()).toBe('1');

      const [pr] = await pulls();
      expect(pr).toMatchObject({ number: opened.pullRequest.number, state: 'open', head: { ref: IMPORT_BRANCH } });
      expect(pr!.title).toBe(`Import ${all.length} versions of 3 models from MLflow`);
      expect(pr!.body).toContain('fraud\\-detector version 3');
      expect(pr!.body).toContain('import\\-production');

      // A second run while the pull request is open: nothing new, no second pull request, no new commit.
      const tip = git(check, 'rev-parse', IMPORT_BRANCH).trim();
      const again = await cli(remote.work, ['import', 'mlflow', '--tracking-uri', tracking, '--pr', '--json'], remote.env);
      expect(again.code, again.stderr).toBe(0);
      expect((again.json as { imported: unknown[] }).imported).toEqual([]);
      expect((again.json as { pullRequest: { number: number; created: boolean } }).pullRequest).toMatchObject({ number: pr!.number, created: false });
      expect(execFileSync('git', ['--git-dir', bare, 'rev-parse', IMPORT_BRANCH], { encoding: 'utf8' }).trim()).toBe(tip);
      expect(await pulls()).toHaveLength(1);

      // The built Action judges it as the body said: pending on who must approve, then a pass.
      remote.gh.addUser('github-actions[bot]', { type: 'Bot', token: 'ghs_actions' });
      remote.gh.addTeam('acme', 'ml-governance', ['dave']);
      remote.gh.addUser('carol');
      const pull = remote.gh.getPull(remote.ghRepo, pr!.number)!;
      const runner = tempDir('mg-mlflow-runner-');
      execFileSync('git', ['clone', '-q', bare, runner]);
      const judge = async (event: 'pull_request_target' | 'pull_request_review') => {
        const action = await runAction({
          tmp: tempDir('mg-mlflow-action-'),
          workspace: runner,
          inputs: { command: 'check', 'github-token': 'ghs_actions', 'registry-path': '.' },
          env: {
            GITHUB_EVENT_NAME: event,
            GITHUB_EVENT_PATH: await writeEventFile(
              tempDir(),
              event === 'pull_request_target' ? pullRequestEvent(pull, 'opened') : pullRequestReviewEvent(pull),
              `event-${randomUUID()}.json`,
            ),
            GITHUB_API_URL: remote.gh.url,
            GITHUB_SERVER_URL: 'https://github.example',
            GITHUB_RUN_ID: '7',
          },
        });
        const report = action.outputs.report ? JSON.parse(await readFile(action.outputs.report, 'utf8')) : {};
        return { ...action, report: report as { transitions: Array<{ kind: string; model?: string; version?: number; to?: string }> } };
      };
      const pending = await judge('pull_request_target');
      expect(pending.outputs.decision, pending.stdout).toBe('pending');
      expect(opened.gate).toBe('pending');
      expect(pending.report.transitions.filter((t) => t.kind === 'new-version')).toHaveLength(all.length);
      expect(
        pending.report.transitions
          .filter((t) => t.kind === 'new-version' && t.to === 'Production')
          .map((t) => `${t.model}@${t.version}`)
          .sort(),
      ).toEqual(['churn@3', 'fraud-detector@2', 'iris@2']);
      remote.gh.addReview(pull, { user: 'dave', state: 'APPROVED' });
      remote.gh.addReview(pull, { user: 'carol', state: 'APPROVED' });
      const passed = await judge('pull_request_review');
      expect(passed.outputs.decision, passed.stdout).toBe('pass');

      const merged = await fetch(`${remote.gh.url}/repos/acme/model-registry/pulls/${pr!.number}/merge`, {
        method: 'PUT',
        headers: { authorization: 'token token-carol', 'content-type': 'application/json' },
        body: JSON.stringify({ merge_method: 'merge' }),
      });
      expect(merged.status).toBe(200);

      // After the merge: nothing to import, no pull request, main holds every version once.
      const after = await cli(remote.work, ['import', 'mlflow', '--tracking-uri', tracking, '--pr', '--json'], remote.env);
      expect(after.code, after.stderr).toBe(0);
      expect((after.json as { imported: unknown[]; pullRequest?: unknown }).imported).toEqual([]);
      expect((after.json as { pullRequest?: unknown }).pullRequest).toBeUndefined();
      expect(await pulls()).toHaveLength(1);
      await promisify(execFile)('git', ['-C', remote.work, 'pull', '-q', '--ff-only', 'origin', 'main']);
      expect(await importedKeys(remote.work)).toEqual(all.map((a) => a.key).sort());
      expect((await cli(remote.work, ['validate'])).code).toBe(0);
      expect((await cli(remote.work, ['show', 'fraud-detector@champion', '--json'])).json).toMatchObject({ version: 2, stage: 'Production' });

      // Something new in MLflow after the merge: a fresh branch from main replaces the merged one, and a new pull request opens.
      const aliased = await fetch(`${tracking}/api/2.0/mlflow/registered-models/alias`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'churn', alias: 'challenger', version: '4' }),
      });
      expect(aliased.status).toBe(200);
      const next = await cli(remote.work, ['import', 'mlflow', '--tracking-uri', tracking, '--pr', '--json'], remote.env);
      expect(next.code, next.stderr).toBe(0);
      const nextReport = next.json as { imported: Array<{ what: string }>; pullRequest: { number: number; created: boolean } };
      expect(nextReport.imported.map((i) => i.what)).toEqual(['churn alias challenger']);
      expect(nextReport.pullRequest.created).toBe(true);
      expect(nextReport.pullRequest.number).not.toBe(pr!.number);
      expect(onBranch()).toBe(1);
      expect(execFileSync('git', ['--git-dir', bare, 'rev-parse', `${IMPORT_BRANCH}^`], { encoding: 'utf8' }).trim()).toBe(
        execFileSync('git', ['--git-dir', bare, 'rev-parse', 'main'], { encoding: 'utf8' }).trim(),
      );
      expect((await pulls()).map((p) => p.state).sort()).toEqual(['closed', 'open']);
      expect(remote.gh.validator.violations).toEqual([]);
    } finally {
      await remote.close();
    }
  }, 900_000);
});
