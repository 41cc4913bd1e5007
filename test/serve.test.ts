// modelgate serve in-process (Fastify's inject and a real listening socket) over real git
// registries in temp dirs: one commit per answer, MLflow's shapes and error codes, access,
// limits, operations endpoints. The MLflow client itself drives serve in python/tests/serve.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { serveGitHttp } from '../src/local/git-http-backend.js';
import { TokenTable } from '../src/serve/access.js';
import { clauseHolds, MlflowError, parseMlflowFilter, toMlflowVersion } from '../src/serve/mlflow.js';
import { ServedRegistry } from '../src/serve/served-registry.js';
import { buildServer } from '../src/serve/server.js';
import type { ModelVersion } from '../src/manifest/types.js';
import { cli, git, makeRegistry, tempDir } from './helpers/artifacts.js';
import { startValidatedGitHubEmulator } from './helpers/github.js';

const TOKEN = 'tok-maria-0123456789abcdef';

async function registryWithModel(): Promise<string> {
  const store = tempDir('mg-serve-store-');
  const dir = makeRegistry({ uri: `file://${store}` });
  const file = join(tempDir('mg-serve-src-'), 'model.bin');
  writeFileSync(file, 'weights v1');
  expect((await cli(dir, ['register', 'fraud', file, '--metric', 'auc=0.91', '--stage', 'Staging', '--run', 'id=run-1'])).code).toBe(0);
  writeFileSync(file, 'weights v2');
  expect((await cli(dir, ['register', 'fraud', file, '--metric', 'auc=0.93'])).code).toBe(0);
  return dir;
}

const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

async function serve(dir: string, extra: Partial<Parameters<typeof buildServer>[0]> = {}) {
  const registry = await ServedRegistry.local(dir, process.env);
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  const { app } = await buildServer({
    registry,
    tokens: TokenTable.parse(`maria ${TOKEN}\n`, 'tokens'),
    logger: { options: { level: 'debug' }, stream },
    ...extra,
  });
  closers.push(async () => {
    await app.close();
    await registry.close();
  });
  return { app, registry, lines };
}

describe('modelgate serve', () => {
  it('answers each request from one commit, named in X-Modelgate-Commit, and moves on after a refresh', async () => {
    const dir = await registryWithModel();
    const { app, registry } = await serve(dir);
    const head1 = git(dir, 'rev-parse', 'HEAD').trim();
    const r1 = await app.inject({ url: '/api/2.0/mlflow/model-versions/get?name=fraud&version=2' });
    expect(r1.statusCode).toBe(200);
    expect(r1.headers['x-modelgate-commit']).toBe(head1);
    expect(r1.json().model_version).toMatchObject({ name: 'fraud', version: '2', current_stage: 'None', status: 'READY' });

    expect((await cli(dir, ['promote', 'fraud@2', '--to', 'Staging'])).code).toBe(0);
    const head2 = git(dir, 'rev-parse', 'HEAD').trim();
    // Until the refresh, the commit served before answers.
    expect((await app.inject({ url: '/api/2.0/mlflow/model-versions/get?name=fraud&version=2' })).json().model_version.current_stage).toBe('None');
    await registry.refresh();
    const r2 = await app.inject({ url: '/api/2.0/mlflow/model-versions/get?name=fraud&version=2' });
    expect(r2.headers['x-modelgate-commit']).toBe(head2);
    expect(r2.json().model_version.current_stage).toBe('Staging');
  });

  it('serves a remote registry from its own clone, fetched at each refresh, and removes the clone when closed', async () => {
    const dir = await registryWithModel();
    const root = tempDir('mg-serve-remote-');
    git(root, 'clone', '-q', '--bare', dir, join(root, 'reg.git'));
    const http = await serveGitHttp(root);
    closers.push(() => http.close());
    const registry = await ServedRegistry.remote(`${http.url}/reg.git`, process.env);
    const { app } = await buildServer({ registry, tokens: TokenTable.empty() });
    const clone = registry.repo.dir;
    try {
      const r1 = await app.inject({ url: '/api/2.0/mlflow/model-versions/get?name=fraud&version=2' });
      expect(r1.headers['x-modelgate-commit']).toBe(git(dir, 'rev-parse', 'HEAD').trim());
      expect(r1.json().model_version.current_stage).toBe('None');
      expect((await cli(dir, ['promote', 'fraud@2', '--to', 'Staging'])).code).toBe(0);
      git(dir, 'push', '-q', join(root, 'reg.git'), 'HEAD:main');
      await registry.refresh();
      const r2 = await app.inject({ url: '/api/2.0/mlflow/model-versions/get?name=fraud&version=2' });
      expect(r2.headers['x-modelgate-commit']).toBe(git(dir, 'rev-parse', 'HEAD').trim());
      expect(r2.json().model_version.current_stage).toBe('Staging');
    } finally {
      await app.close();
      await registry.close();
    }
    expect(existsSync(clone)).toBe(false);
  });

  it('gives MLflow shapes: latest versions per stage (GET and POST), search with filters and pages', async () => {
    const { app } = await serve(await registryWithModel());
    const latest = await app.inject({
      method: 'POST',
      url: '/api/2.0/mlflow/registered-models/get-latest-versions',
      payload: { name: 'fraud', stages: ['staging'] },
    });
    expect(latest.json().model_versions.map((v: { version: string }) => v.version)).toEqual(['1']);
    const viaGet = await app.inject({ url: '/api/2.0/mlflow/registered-models/get-latest-versions?name=fraud&stages=Staging&stages=None' });
    expect(viaGet.json().model_versions.map((v: { version: string }) => v.version)).toEqual(['1', '2']);

    const byRun = await app.inject({ url: `/api/2.0/mlflow/model-versions/search?filter=${encodeURIComponent("run_id = 'run-1'")}` });
    expect(byRun.json().model_versions.map((v: { version: string }) => v.version)).toEqual(['1']);
    const page1 = await app.inject({ url: '/api/2.0/mlflow/model-versions/search?max_results=1' });
    expect(page1.json().model_versions).toHaveLength(1);
    const token = page1.json().next_page_token as string;
    expect(token).toBeTypeOf('string');
    const page2 = await app.inject({ url: `/api/2.0/mlflow/model-versions/search?max_results=1&page_token=${token}` });
    expect(page2.json().model_versions).toHaveLength(1);
    expect(page2.json().next_page_token).toBeUndefined();
    expect(page2.json().model_versions[0].version).not.toBe(page1.json().model_versions[0].version);
  });

  it('resolves aliases through the commit: get-by-alias, aliases on models and versions, /api/v1 by alias', async () => {
    const dir = await registryWithModel();
    expect((await cli(dir, ['alias', 'set', 'fraud@1', 'champion'])).code).toBe(0);
    expect((await cli(dir, ['alias', 'set', 'fraud@1', 'stable'])).code).toBe(0);
    expect((await cli(dir, ['alias', 'set', 'fraud@2', 'challenger'])).code).toBe(0);
    const { app } = await serve(dir);
    const byAlias = await app.inject({ url: '/api/2.0/mlflow/registered-models/alias?name=fraud&alias=champion' });
    expect(byAlias.statusCode).toBe(200);
    expect(byAlias.json().model_version).toMatchObject({ name: 'fraud', version: '1', aliases: ['champion', 'stable'] });
    const model = (await app.inject({ url: '/api/2.0/mlflow/registered-models/get?name=fraud' })).json().registered_model;
    expect(model.aliases).toEqual([
      { alias: 'challenger', version: '2' },
      { alias: 'champion', version: '1' },
      { alias: 'stable', version: '1' },
    ]);
    expect(model.latest_versions.find((v: { version: string }) => v.version === '2').aliases).toEqual(['challenger']);
    const v2 = (await app.inject({ url: '/api/2.0/mlflow/model-versions/get?name=fraud&version=2' })).json().model_version;
    expect(v2.aliases).toEqual(['challenger']);
    const searched = (await app.inject({ url: `/api/2.0/mlflow/model-versions/search?filter=${encodeURIComponent("name = 'fraud'")}` })).json();
    expect(searched.model_versions.map((v: { version: string; aliases: string[] }) => [v.version, v.aliases])).toEqual([
      ['2', ['challenger']],
      ['1', ['champion', 'stable']],
    ]);
    const v1 = await app.inject({ url: '/api/v1/models/fraud/versions/champion' });
    expect([v1.statusCode, v1.json().version]).toEqual([200, 1]);
    expect((await app.inject({ url: '/api/v1/models/fraud' })).json().aliases).toEqual({ champion: 1, stable: 1, challenger: 2 });
    const missing = await app.inject({ url: '/api/v1/models/fraud/versions/nobody' });
    expect([missing.statusCode, missing.json().error.code]).toEqual([404, 'E_NOT_FOUND']);
  });

  it('lands MLflow writes as the CLI does with --writes commit: the commit appears, the next read answers the new state', async () => {
    const dir = await registryWithModel();
    expect((await cli(dir, ['serve', '--writes', 'direct'])).code).toBe(2);
    const { app } = await serve(dir, { writes: 'commit' });
    const auth = { authorization: `Bearer ${TOKEN}` };
    const write = (method: 'POST' | 'DELETE', path: string, payload: Record<string, unknown>, headers: Record<string, string> = auth) =>
      app.inject({ method, url: `/api/2.0/mlflow/${path}`, payload, headers });

    const before = git(dir, 'rev-parse', 'HEAD').trim();
    const anonymous = await write('POST', 'registered-models/alias', { name: 'fraud', alias: 'champion', version: '1' }, {});
    expect([anonymous.statusCode, anonymous.json().error_code]).toEqual([401, 'UNAUTHENTICATED']);
    expect(git(dir, 'rev-parse', 'HEAD').trim()).toBe(before);

    const set = await write('POST', 'registered-models/alias', { name: 'fraud', alias: 'champion', version: '1' });
    expect([set.statusCode, set.json()]).toEqual([200, {}]);
    const head = git(dir, 'rev-parse', 'HEAD').trim();
    expect(head).not.toBe(before);
    expect(set.headers['x-modelgate-commit']).toBe(head);
    expect(git(dir, 'log', '-1', '--format=%an <%ae>|%s').trim()).toBe('maria <maria@users.noreply.github.com>|Set fraud@champion to version 1');
    const byAlias = await app.inject({ url: '/api/2.0/mlflow/registered-models/alias?name=fraud&alias=champion' });
    expect([byAlias.headers['x-modelgate-commit'], byAlias.json().model_version.version]).toEqual([head, '1']);
    // Setting it again changes nothing and commits nothing, as MLflow's write is idempotent.
    expect((await write('POST', 'registered-models/alias', { name: 'fraud', alias: 'champion', version: '1' })).statusCode).toBe(200);
    expect(git(dir, 'rev-parse', 'HEAD').trim()).toBe(head);

    // transition_model_version_stage is `promote`: version 2 to Production, with its pin in the same commit.
    const moved = await write('POST', 'model-versions/transition-stage', {
      name: 'fraud',
      version: '2',
      stage: 'production',
      archive_existing_versions: false,
    });
    expect(moved.statusCode).toBe(200);
    expect(moved.json().model_version).toMatchObject({ name: 'fraud', version: '2', current_stage: 'Production' });
    expect(git(dir, 'show', '--name-only', '--format=%s', 'HEAD').trim().split('\n')).toContain('models/fraud/versions/2.yaml');
    expect((await app.inject({ url: '/api/2.0/mlflow/model-versions/get?name=fraud&version=2' })).json().model_version.current_stage).toBe('Production');

    const tagged = await write('POST', 'model-versions/set-tag', { name: 'fraud', version: '2', key: 'reviewed-by', value: 'risk-team' });
    expect(tagged.statusCode).toBe(200);
    const tags = (await app.inject({ url: '/api/2.0/mlflow/model-versions/get?name=fraud&version=2' })).json().model_version.tags;
    expect(tags).toContainEqual({ key: 'reviewed-by', value: 'risk-team' });

    const deleted = await write('DELETE', 'registered-models/alias', { name: 'fraud', alias: 'champion' });
    expect(deleted.statusCode).toBe(200);
    const gone = await app.inject({ url: '/api/2.0/mlflow/registered-models/alias?name=fraud&alias=champion' });
    expect([gone.statusCode, gone.json().error_code]).toEqual([404, 'RESOURCE_DOES_NOT_EXIST']);

    // The registry's rules answer as MLflow errors, and deletes are refused; none of them commits.
    const last = git(dir, 'rev-parse', 'HEAD').trim();
    const refusals: Array<['POST' | 'DELETE', string, Record<string, unknown>, number, string]> = [
      ['POST', 'model-versions/transition-stage', { name: 'fraud', version: '1', stage: 'Archived' }, 200, ''],
      ['POST', 'registered-models/alias', { name: 'fraud', alias: 'old', version: '1' }, 400, 'INVALID_STATE'],
      ['POST', 'registered-models/alias', { name: 'fraud', alias: 'latest', version: '2' }, 400, 'INVALID_PARAMETER_VALUE'],
      ['POST', 'registered-models/alias', { name: 'fraud', alias: 'x', version: '9' }, 404, 'RESOURCE_DOES_NOT_EXIST'],
      ['POST', 'model-versions/set-tag', { name: 'fraud', version: '2', key: 'modelgate.sha256', value: 'x' }, 400, 'INVALID_PARAMETER_VALUE'],
      ['DELETE', 'model-versions/delete', { name: 'fraud', version: '1' }, 403, 'PERMISSION_DENIED'],
      ['DELETE', 'registered-models/delete', { name: 'fraud' }, 403, 'PERMISSION_DENIED'],
      ['DELETE', 'model-versions/delete-tag', { name: 'fraud', version: '2', key: 'reviewed-by' }, 403, 'PERMISSION_DENIED'],
    ];
    for (const [method, path, payload, status, code] of refusals) {
      const r = await write(method, path, payload);
      expect([path, r.statusCode, r.statusCode === 200 ? '' : r.json().error_code]).toEqual([path, status, code]);
    }
    // Only the archive of version 1 (the first row) committed.
    expect(git(dir, 'rev-list', '--count', `${last}..HEAD`).trim()).toBe('1');
  });

  it('answers a write with --writes pr by opening the pull request and an MLflow error naming it; nothing changes on main', async () => {
    const gh = await startValidatedGitHubEmulator();
    closers.push(() => gh.close());
    gh.addUser('maria');
    const dir = await registryWithModel();
    writeFileSync(join(dir, 'modelgate.yaml'), `${readFileSync(join(dir, 'modelgate.yaml'), 'utf8')}github:\n  repository: acme/model-registry\n`);
    git(dir, 'commit', '-qam', 'github repository');
    const bare = join(tempDir('mg-serve-pr-'), 'registry.git');
    git(dir, 'clone', '-q', '--bare', dir, bare);
    git(dir, 'remote', 'add', 'origin', bare);
    git(dir, 'fetch', '-q', 'origin');
    const repo = gh.addRepo('acme', 'model-registry', { gitDir: bare });
    const env = { ...process.env, GITHUB_TOKEN: 'token-maria', GITHUB_API_URL: gh.url };
    const registry = await ServedRegistry.local(dir, env);
    const { app } = await buildServer({ registry, tokens: TokenTable.parse(`maria ${TOKEN}\n`, 'tokens'), writes: 'pr' });
    closers.push(async () => {
      await app.close();
      await registry.close();
    });
    const main = git(bare, 'rev-parse', 'main').trim();
    const r = await app.inject({
      method: 'POST',
      url: '/api/2.0/mlflow/registered-models/alias',
      payload: { name: 'fraud', alias: 'champion', version: '1' },
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect([r.statusCode, r.json().error_code]).toEqual([400, 'INVALID_STATE']);
    const pull = gh.getPull(repo, 1)!;
    expect(pull.head.ref).toBe('modelgate/alias/fraud/champion');
    expect(r.json().message).toMatch(/pull request #1 \(\S+\/acme\/model-registry\/pull\/1\)/);
    expect(pull.body).toContain('**maria**');
    expect(git(bare, 'rev-parse', 'main').trim()).toBe(main);
    const byAlias = await app.inject({ url: '/api/2.0/mlflow/registered-models/alias?name=fraud&alias=champion' });
    expect(byAlias.statusCode).toBe(404);

    // Description edits are governed changes too: a version's as its description annotation, a model's in model.yaml.
    const described = await app.inject({
      method: 'PATCH',
      url: '/api/2.0/mlflow/model-versions/update',
      payload: { name: 'fraud', version: '2', description: 'retrained on March data' },
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect([described.statusCode, described.json().error_code]).toEqual([400, 'INVALID_STATE']);
    const versionPull = gh.getPull(repo, 2)!;
    expect(versionPull.head.ref).toBe('modelgate/fraud-v2-annotate-description');
    expect(git(bare, 'show', `${versionPull.head.sha}:models/fraud/versions/2.yaml`)).toMatch(/annotations:\n\s+description: retrained on March data/);
    const modelDescribed = await app.inject({
      method: 'PATCH',
      url: '/api/2.0/mlflow/registered-models/update',
      payload: { name: 'fraud', description: 'Flags fraudulent card payments' },
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect([modelDescribed.statusCode, modelDescribed.json().error_code]).toEqual([400, 'INVALID_STATE']);
    const modelPull = gh.getPull(repo, 3)!;
    expect(modelPull.head.ref).toBe('modelgate/model/fraud');
    expect(git(bare, 'show', `${modelPull.head.sha}:models/fraud/model.yaml`)).toContain('description: Flags fraudulent card payments');
    expect(git(bare, 'rev-parse', 'main').trim()).toBe(main);
    const unchanged = await app.inject({ url: '/api/2.0/mlflow/model-versions/get?name=fraud&version=2' });
    expect(unchanged.json().model_version.description).toBeUndefined();
    expect(gh.validator.violations).toEqual([]);
  });

  it('answers /api/v1 history with approvers from the served commit, and pins per environment', async () => {
    const dir = await registryWithModel();
    writeFileSync(
      join(dir, 'models/fraud/model.yaml'),
      'apiVersion: modelgate.dev/v1\nkind: Model\nname: fraud\ndeploy:\n  kind: Deployment\n  image: ghcr.io/acme/fraud-server:1.0\n',
    );
    git(dir, 'commit', '-qam', 'deploy fraud');
    const promoted = await cli(dir, ['promote', 'fraud@2', '--to', 'Production']);
    expect([promoted.code, promoted.stderr]).toEqual([0, '']);
    expect((await cli(dir, ['alias', 'set', 'fraud@2', 'champion'])).code).toBe(0);
    const { app } = await serve(dir);
    const history = await app.inject({ url: '/api/v1/models/fraud/history' });
    expect(history.statusCode).toBe(200);
    const cliHistory = JSON.parse((await cli(dir, ['--json', 'history', 'fraud'])).stdout);
    expect(history.json().history).toEqual(cliHistory);
    expect(history.json().history.map((c: { version: number; from: unknown; to: unknown; alias?: string }) => [c.version, c.from, c.to, c.alias])).toEqual([
      [1, null, 'Staging', undefined],
      [2, null, 'None', undefined],
      [2, 'None', 'Production', undefined],
      [2, null, 2, 'champion'],
    ]);
    expect(history.json().history[0].decision).toEqual({ record: 'not-a-pull-request' });
    // From the served commit: a commit made since is not in the answer until a refresh serves it.
    expect((await cli(dir, ['alias', 'delete', 'fraud', 'champion'])).code).toBe(0);
    expect((await app.inject({ url: '/api/v1/models/fraud/history' })).json().history).toHaveLength(4);
    expect((await app.inject({ url: '/api/v1/models/fraud/pins' })).json().pins).toEqual([
      { environment: 'staging', stage: 'Staging', version: 1 },
      { environment: 'production', stage: 'Production', version: 2 },
    ]);
    expect((await app.inject({ url: '/api/v1/pins' })).json().environments).toEqual([
      { environment: 'staging', stage: 'Staging', models: { fraud: 1 } },
      { environment: 'production', stage: 'Production', models: { fraud: 2 } },
    ]);
    const missing = await app.inject({ url: '/api/v1/models/nope/history' });
    expect([missing.statusCode, missing.json().error.code]).toEqual([404, 'E_NOT_FOUND']);
  });

  it("answers failures with MLflow's error codes and statuses", async () => {
    const { app } = await serve(await registryWithModel());
    const cases: Array<[string, number, string]> = [
      ['/api/2.0/mlflow/registered-models/get?name=nope', 404, 'RESOURCE_DOES_NOT_EXIST'],
      ['/api/2.0/mlflow/registered-models/get?name=..%2F..%2Fetc', 404, 'RESOURCE_DOES_NOT_EXIST'],
      ['/api/2.0/mlflow/model-versions/get?name=fraud&version=x', 400, 'INVALID_PARAMETER_VALUE'],
      ['/api/2.0/mlflow/model-versions/get?name=fraud', 400, 'INVALID_PARAMETER_VALUE'],
      [`/api/2.0/mlflow/registered-models/search?filter=${encodeURIComponent("owner = 'x'")}`, 400, 'INVALID_PARAMETER_VALUE'],
      ['/api/2.0/mlflow/registered-models/alias?name=fraud&alias=champion', 404, 'RESOURCE_DOES_NOT_EXIST'],
      ['/api/2.0/mlflow-artifacts/artifacts/fraud/1/..%2F..%2Fmodelgate.yaml', 400, 'INVALID_PARAMETER_VALUE'],
      ['/api/2.0/mlflow-artifacts/artifacts/fraud/9/model.bin', 404, 'RESOURCE_DOES_NOT_EXIST'],
      ['/api/2.0/mlflow/no-such-endpoint', 404, 'ENDPOINT_NOT_FOUND'],
    ];
    for (const [url, status, code] of cases) {
      const r = await app.inject({ url });
      expect([url, r.statusCode, r.json().error_code]).toEqual([url, status, code]);
    }
  });

  it('streams an artifact whose bytes verify, and cuts one that does not short of its size', async () => {
    const dir = await registryWithModel();
    const { app, lines } = await serve(dir);
    const ok = await app.inject({ url: '/api/2.0/mlflow-artifacts/artifacts/fraud/1/model.bin' });
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toBe('weights v1');
    const listed = await app.inject({ url: '/api/2.0/mlflow-artifacts/artifacts?path=fraud/1' });
    expect(listed.json()).toEqual({ files: [{ path: 'model.bin', is_dir: false, file_size: 10 }] });

    const uri = (await app.inject({ url: '/api/2.0/mlflow/model-versions/get?name=fraud&version=1' }))
      .json()
      .model_version.tags.find((t: { key: string }) => t.key === 'modelgate.uri').value as string;
    const object = decodeURIComponent(new URL(uri).pathname);
    const { chmodSync } = await import('node:fs');
    chmodSync(object, 0o644);
    writeFileSync(object, 'weights v9');
    const bad = await app.inject({ url: '/api/2.0/mlflow-artifacts/artifacts/fraud/1/model.bin' }).catch((e: unknown) => e);
    // The response never carries the whole (unverified) file.
    if (!(bad instanceof Error)) expect((bad as { body: string }).body).not.toBe('weights v9');
    expect(lines.join('')).toContain('failed its sha256 check');
  });

  it('refuses unknown tokens, needs one for private reads, and never logs a token', async () => {
    const dir = await registryWithModel();
    const open = await serve(dir);
    const url = '/api/2.0/mlflow/registered-models/get?name=fraud';
    expect((await open.app.inject({ url })).statusCode).toBe(200);
    expect((await open.app.inject({ url, headers: { authorization: `Bearer ${TOKEN}` } })).statusCode).toBe(200);
    const wrong = await open.app.inject({ url, headers: { authorization: 'Bearer not-a-known-token-at-all' } });
    expect([wrong.statusCode, wrong.json().error_code]).toEqual([401, 'UNAUTHENTICATED']);
    expect(open.lines.join('')).not.toContain(TOKEN);
    expect(open.lines.join('')).not.toContain('not-a-known-token-at-all');

    const closed = await serve(dir, { privateReads: true });
    expect((await closed.app.inject({ url })).json().error_code).toBe('UNAUTHENTICATED');
    expect((await closed.app.inject({ url, headers: { authorization: `Bearer ${TOKEN}` } })).statusCode).toBe(200);
    // The operations endpoints stay open for the kubelet and Prometheus.
    expect((await closed.app.inject({ url: '/healthz' })).statusCode).toBe(200);
  });

  it('limits request rates and body sizes', async () => {
    const { app } = await serve(await registryWithModel(), { rateLimit: 3, bodyLimit: 1024 });
    const big = await app.inject({ method: 'POST', url: '/api/2.0/mlflow/registered-models/get-latest-versions', payload: { name: 'x'.repeat(2000) } });
    expect([big.statusCode, big.json().error_code]).toEqual([413, 'BAD_REQUEST']);
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) codes.push((await app.inject({ url: '/api/2.0/mlflow/registered-models/search' })).statusCode);
    expect(codes.filter((c) => c === 429).length).toBeGreaterThan(0);
    const limited = await app.inject({ url: '/api/2.0/mlflow/registered-models/search' });
    expect(limited.json().error_code).toBe('REQUEST_LIMIT_EXCEEDED');
  });

  it('counts an artifact download as one request to the rate limit, however many files it has', async () => {
    const dir = await registryWithModel();
    const folder = tempDir('mg-serve-many-');
    for (let i = 0; i < 12; i++) writeFileSync(join(folder, `part-${String(i).padStart(2, '0')}.bin`), `part ${i}`);
    expect((await cli(dir, ['register', 'sharded', folder])).code).toBe(0);
    const { app } = await serve(dir, { rateLimit: 3 });
    // MLflow's client: list the artifact, then fetch each file (12 + 1 requests, one counted).
    const listed = await app.inject({ url: '/api/2.0/mlflow-artifacts/artifacts?path=sharded/1' });
    expect(listed.statusCode).toBe(200);
    const files: Array<{ path: string }> = listed.json().files;
    expect(files).toHaveLength(12);
    for (const f of files) {
      const r = await app.inject({ url: `/api/2.0/mlflow-artifacts/artifacts/sharded/1/${f.path}` });
      expect([f.path, r.statusCode]).toEqual([f.path, 200]);
    }
    // Two more requests fit the limit of 3; the one after is refused, and so is a new download.
    expect((await app.inject({ url: '/api/2.0/mlflow/registered-models/get?name=fraud' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/api/2.0/mlflow-artifacts/artifacts?path=fraud/1' })).statusCode).toBe(200);
    const over = await app.inject({ url: '/api/2.0/mlflow/registered-models/get?name=fraud' });
    expect([over.statusCode, over.json().error_code]).toEqual([429, 'REQUEST_LIMIT_EXCEEDED']);
    expect((await app.inject({ url: '/api/2.0/mlflow-artifacts/artifacts?path=fraud/2' })).statusCode).toBe(429);
    // The files of a download already counted still come.
    expect((await app.inject({ url: '/api/2.0/mlflow-artifacts/artifacts/sharded/1/part-00.bin' })).statusCode).toBe(200);
  });

  it('answers /healthz, /readyz once a commit is loaded, and Prometheus /metrics', async () => {
    const { app, registry } = await serve(await registryWithModel());
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/readyz' })).statusCode).toBe(503);
    await registry.refresh();
    const ready = await app.inject({ url: '/readyz' });
    expect([ready.statusCode, ready.json().ready]).toEqual([200, true]);
    await app.inject({ url: '/api/2.0/mlflow/registered-models/get?name=fraud' });
    const metrics = await app.inject({ url: '/metrics' });
    expect(metrics.headers['content-type']).toContain('text/plain');
    expect(metrics.body).toMatch(/modelgate_serve_requests_total\{method="GET",route="\/api\/2\.0\/mlflow\/registered-models\/get",status="200"\} 1/);
  });

  it('answers /api/v1 with the CLI read models, its errors with modelgate codes, and serves its OpenAPI 3.1 document', async () => {
    const { app } = await serve(await registryWithModel());
    const models = await app.inject({ url: '/api/v1/models' });
    expect(models.json()).toEqual({ models: [{ name: 'fraud', versions: 2, latest: 2 }] });
    expect((await app.inject({ url: '/api/v1/models/fraud' })).json()).toMatchObject({ name: 'fraud', versions: [1, 2], stages: { Staging: 1, None: 2 } });
    expect((await app.inject({ url: '/api/v1/models/fraud/versions/staging' })).json()).toMatchObject({ model: 'fraud', version: 1, stage: 'Staging' });
    expect((await app.inject({ url: '/api/v1/models/fraud/versions/latest' })).json().version).toBe(2);
    const search = await app.inject({ url: `/api/v1/versions?where=${encodeURIComponent('metrics.auc > 0.92')}` });
    expect(search.json().versions.map((v: { version: number }) => v.version)).toEqual([2]);
    const cases: Array<[string, number, string]> = [
      ['/api/v1/models/nope', 404, 'E_NOT_FOUND'],
      ['/api/v1/models/fraud/versions/7', 404, 'E_NOT_FOUND'],
      ['/api/v1/models/fraud/versions/Champion%21', 400, 'E_USAGE'],
      ['/api/v1/models/fraud/versions/champion-x', 404, 'E_NOT_FOUND'],
      ['/api/v1/models/Not_A_Name', 400, 'E_USAGE'],
      [`/api/v1/versions?where=${encodeURIComponent('metrics.auc >')}`, 400, 'E_WHERE_SYNTAX'],
    ];
    for (const [url, status, code] of cases) {
      const r = await app.inject({ url });
      expect([url, r.statusCode, r.json().error.code]).toEqual([url, status, code]);
    }
    const doc = (await app.inject({ url: '/api/v1/openapi.json' })).json();
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/api/v1/models',
      '/api/v1/models/{model}',
      '/api/v1/models/{model}/aliases/{alias}',
      '/api/v1/models/{model}/history',
      '/api/v1/models/{model}/pins',
      '/api/v1/models/{model}/uploads',
      '/api/v1/models/{model}/versions',
      '/api/v1/models/{model}/versions/{ref}',
      '/api/v1/models/{model}/versions/{version}/stage',
      '/api/v1/pins',
      '/api/v1/uploads/{upload}',
      '/api/v1/uploads/{upload}/register',
      '/api/v1/versions',
    ]);
  });

  it('finishes a download in flight when it closes, and refuses new connections', async () => {
    const dir = await registryWithModel();
    const big = join(tempDir('mg-serve-big-'), 'big.bin');
    writeFileSync(big, Buffer.alloc(32 << 20, 7));
    expect((await cli(dir, ['register', 'big', big])).code).toBe(0);
    const { app, registry } = await serve(dir);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as { port: number };
    // Headers in hand, body unread: the server is mid-stream (32 MiB does not fit the socket buffers).
    const response = await fetch(`http://127.0.0.1:${port}/api/2.0/mlflow-artifacts/artifacts/big/1/big.bin`);
    expect(response.status).toBe(200);
    const closing = app.close();
    const body = Buffer.from(await response.arrayBuffer());
    expect(body.length).toBe(32 << 20);
    await closing;
    await registry.close();
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });
});

describe("MLflow's filter grammar and records (pure)", () => {
  it('parses what MLflow clients send, including the prompt exclusion MLflow 3 adds', () => {
    expect(parseMlflowFilter("name LIKE 'fr%' AND tag.`mlflow.prompt.is_prompt` != 'true'", ['name'])).toEqual([
      { key: 'name', op: 'LIKE', value: 'fr%' },
      { key: 'tags.mlflow.prompt.is_prompt', op: '!=', value: 'true' },
    ]);
    expect(parseMlflowFilter("run_id IN ('a', 'b') and version_number >= 2", ['run_id', 'version_number'])).toEqual([
      { key: 'run_id', op: 'IN', value: ['a', 'b'] },
      { key: 'version_number', op: '>=', value: 2 },
    ]);
    for (const bad of ["name ~ 'x'", "name = 'x' OR name = 'y'", "stage = 'x'", "name = 'x", 'name ='])
      expect(() => parseMlflowFilter(bad, ['name'])).toThrow(MlflowError);
  });

  it('applies LIKE, ILIKE and absent values as MLflow stores do', () => {
    expect(clauseHolds({ key: 'name', op: 'LIKE', value: 'fr_ud%' }, 'fraud-detector')).toBe(true);
    expect(clauseHolds({ key: 'name', op: 'LIKE', value: 'FR%' }, 'fraud')).toBe(false);
    expect(clauseHolds({ key: 'name', op: 'ILIKE', value: 'FR%' }, 'fraud')).toBe(true);
    expect(clauseHolds({ key: 'tags.x', op: '!=', value: 'true' }, undefined)).toBe(true);
    expect(clauseHolds({ key: 'tags.x', op: '=', value: 'true' }, undefined)).toBe(false);
  });

  it("maps a version's manifest to MLflow's ModelVersion", () => {
    const v: ModelVersion = {
      apiVersion: 'modelgate.dev/v1',
      kind: 'ModelVersion',
      model: 'fraud',
      version: 3,
      stage: 'Production',
      createdAt: '2026-11-27T10:00:00Z',
      createdBy: 'maria',
      artifact: { uri: 'file:///s/fraud/sha256/ab/m.bin', sha256: 'a'.repeat(64), size: 5 },
      format: 'joblib',
      metrics: { auc: 0.97 },
      lineage: { run: { id: 'r-1', url: 'https://ci.example/r/1' } },
      annotations: { validation_status: 'passed' },
    };
    const m = toMlflowVersion(v, { downloadUri: 'http://serve/x', aliases: ['champion'] });
    expect(m).toMatchObject({
      name: 'fraud',
      version: '3',
      current_stage: 'Production',
      creation_timestamp: Date.parse('2026-11-27T10:00:00Z'),
      user_id: 'maria',
      run_id: 'r-1',
      run_link: 'https://ci.example/r/1',
      source: 'http://serve/x',
      aliases: ['champion'],
    });
    expect(m.tags).toContainEqual({ key: 'validation_status', value: 'passed' });
    expect(m.tags).toContainEqual({ key: 'modelgate.sha256', value: 'a'.repeat(64) });
    expect(m.tags).toContainEqual({ key: 'modelgate.metrics.auc', value: '0.97' });
  });

  it('reads a tokens file and refuses malformed lines without echoing a token', () => {
    const t = TokenTable.parse(`# comment\nmaria ${TOKEN}\n\nci-bot tok-ci-0123456789abcdef\n`, 'tokens');
    expect(t.identify(TOKEN)).toBe('maria');
    expect(t.identify('nope')).toBeUndefined();
    try {
      TokenTable.parse('maria short\n', 'tokens');
      expect.unreachable();
    } catch (e) {
      expect((e as { code: string }).code).toBe('E_USAGE');
      expect((e as Error).message).not.toContain('short');
    }
  });
});
