// serve's /api/v1 writes with --writes pr, in-process over a real git registry whose remote is a
// bare clone known to the GitHub emulator: a registration by upload opens its pull request on a
// registration branch (nothing on main), promote and alias open theirs, and the OpenAPI document
// declares the write routes. The Python package drives the same routes with --writes commit in
// python/tests/serve/test_sdk_writes.py.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TokenTable } from '../src/serve/access.js';
import { ServedRegistry } from '../src/serve/served-registry.js';
import { buildServer } from '../src/serve/server.js';
import { cli, git, makeRegistry, tempDir } from './helpers/artifacts.js';
import { startValidatedGitHubEmulator } from './helpers/github.js';

const TOKEN = 'tok-maria-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}` };
const sha256 = (bytes: string | Buffer) => createHash('sha256').update(bytes).digest('hex');

const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

async function prServer() {
  const gh = await startValidatedGitHubEmulator();
  closers.push(() => gh.close());
  gh.addUser('maria');
  const store = tempDir('mg-upload-store-');
  const dir = makeRegistry({ uri: `file://${store}` });
  const file = join(tempDir('mg-upload-src-'), 'model.bin');
  writeFileSync(file, 'weights v1');
  expect((await cli(dir, ['register', 'fraud', file, '--metric', 'auc=0.91', '--stage', 'Staging'])).code).toBe(0);
  writeFileSync(join(dir, 'modelgate.yaml'), `${readFileSync(join(dir, 'modelgate.yaml'), 'utf8')}github:\n  repository: acme/model-registry\n`);
  git(dir, 'commit', '-qam', 'github repository');
  const bare = join(tempDir('mg-upload-pr-'), 'registry.git');
  git(dir, 'clone', '-q', '--bare', dir, bare);
  git(dir, 'remote', 'add', 'origin', bare);
  git(dir, 'fetch', '-q', 'origin');
  const repo = gh.addRepo('acme', 'model-registry', { gitDir: bare });
  const registry = await ServedRegistry.local(dir, { ...process.env, GITHUB_TOKEN: 'token-maria', GITHUB_API_URL: gh.url });
  const { app } = await buildServer({ registry, tokens: TokenTable.parse(`maria ${TOKEN}\n`, 'tokens'), writes: 'pr' });
  closers.push(async () => {
    await app.close();
    await registry.close();
  });
  return { app, gh, repo, bare, store };
}

describe('serve /api/v1 writes with --writes pr', () => {
  it('registers an upload in a pull request on a registration branch, with the caller in it; main is untouched', async () => {
    const { app, gh, repo, bare, store } = await prServer();
    const main = git(bare, 'rev-parse', 'main').trim();
    const files = { MLmodel: 'flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n', 'conf/params.json': '{"depth": 6}' };
    const declared = Object.entries(files).map(([path, text]) => ({ path, sha256: sha256(text), size: Buffer.byteLength(text) }));
    const begun = await app.inject({ method: 'POST', url: '/api/v1/models/fraud/uploads', headers: auth, payload: { directory: true, files: declared } });
    expect(begun.statusCode).toBe(201);
    const { upload, sha256: digest, missing } = begun.json<{ upload: string; sha256: string; missing: string[] }>();
    expect(missing.sort()).toEqual(['MLmodel', 'conf/params.json']);
    for (const [path, text] of Object.entries(files)) {
      const put = await app.inject({
        method: 'PUT',
        url: `/api/v1/uploads/${upload}?path=${encodeURIComponent(path)}`,
        headers: { ...auth, 'content-type': 'application/octet-stream' },
        payload: Buffer.from(text),
      });
      expect(put.statusCode).toBe(200);
    }
    expect(readFileSync(join(store, 'fraud', 'sha256', digest, 'conf', 'params.json'), 'utf8')).toBe(files['conf/params.json']);

    const done = await app.inject({
      method: 'POST',
      url: `/api/v1/uploads/${upload}/register`,
      headers: auth,
      payload: { metrics: { auc: 0.95 }, params: { depth: 6 }, lineage: { run: { id: 'run-7' } }, stage: 'Staging' },
    });
    expect(done.statusCode).toBe(201);
    const answer = done.json();
    expect([answer.ref, answer.sha256, answer.pullRequest.number, answer.commit === null]).toEqual(['fraud@2', digest, 1, false]);
    const pull = gh.getPull(repo, 1)!;
    expect(pull.head.ref).toBe('modelgate/fraud-v2-register');
    expect(pull.body).toContain('**maria**');
    expect(git(bare, 'rev-parse', 'main').trim()).toBe(main);
    const manifest = git(bare, 'show', 'modelgate/fraud-v2-register:models/fraud/versions/2.yaml');
    expect(manifest).toContain(`sha256: ${digest}`);
    expect(manifest).toContain('createdBy: maria');
    expect(manifest).toContain('id: run-7');
    expect(gh.validator.violations).toEqual([]);
  });

  it('opens pull requests for promote and alias, and declares every write in the OpenAPI document', async () => {
    const { app, gh, repo, bare } = await prServer();
    const main = git(bare, 'rev-parse', 'main').trim();
    const promoted = await app.inject({ method: 'POST', url: '/api/v1/models/fraud/versions/1/stage', headers: auth, payload: { to: 'Production' } });
    expect(promoted.statusCode).toBe(200);
    expect(promoted.json().pullRequest.number).toBe(1);
    expect(gh.getPull(repo, 1)!.head.ref).toMatch(/^modelgate\//);
    const aliased = await app.inject({ method: 'PUT', url: '/api/v1/models/fraud/aliases/champion', headers: auth, payload: { version: 1 } });
    expect([aliased.statusCode, aliased.json().pullRequest.number]).toEqual([200, 2]);
    expect(gh.getPull(repo, 2)!.head.ref).toBe('modelgate/alias/fraud/champion');
    expect(git(bare, 'rev-parse', 'main').trim()).toBe(main);

    const anonymous = await app.inject({ method: 'POST', url: '/api/v1/models/fraud/versions/1/stage', payload: { to: 'Production' } });
    expect([anonymous.statusCode, anonymous.json().error.code]).toEqual([401, 'E_UNAUTHENTICATED']);
    const unknown = await app.inject({
      method: 'POST',
      url: '/api/v1/uploads/fraud.00000000-0000-4000-8000-000000000000/register',
      headers: auth,
      payload: {},
    });
    expect([unknown.statusCode, unknown.json().error.code]).toEqual([404, 'E_UPLOAD_UNKNOWN']);

    const doc = (await app.inject({ url: '/api/v1/openapi.json' })).json();
    expect(Object.keys(doc.paths['/api/v1/models/{model}/uploads'])).toEqual(['post']);
    expect(Object.keys(doc.paths['/api/v1/uploads/{upload}']).sort()).toEqual(['delete', 'put']);
    expect(Object.keys(doc.paths['/api/v1/uploads/{upload}/register'])).toEqual(['post']);
    expect(doc.paths['/api/v1/uploads/{upload}'].put.requestBody.content['application/octet-stream'].schema).toMatchObject({
      type: 'string',
      format: 'binary',
    });
    expect(doc.paths['/api/v1/models/{model}/versions/{version}/stage'].post.security).toEqual([{ bearer: [] }]);
  });
});
