import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlflowTrackingClient } from '../src/mlflow/client.js';
import { deletedVersions, mlflowTime, planMoves, runValues, type MlflowModelVersion, type NotCarried } from '../src/mlflow/records.js';
import { cli, git, makeRegistry, tempDir } from './helpers/artifacts.js';

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
});
