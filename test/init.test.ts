import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, parseDocument } from 'yaml';
import { runCli } from '../src/cli/main.js';
import { loadManifest, type DocumentKind } from '../src/manifest/load.js';
import { exampleArtifacts } from '../src/registry/example.js';
import { instantiateTemplate, isExampleFile, spliceScalars, templateDir } from '../src/registry/template.js';
import { createTestBucket, s3Config } from './helpers/s3.js';

const PROJECT = resolve(fileURLToPath(import.meta.url), '../..');
const TEMPLATE = join(PROJECT, 'registry-template');
const tmp = mkdtempSync(join(tmpdir(), 'modelgate-init-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function cliEnv(cwd: string, env: NodeJS.ProcessEnv, ...args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { cwd, env, stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), tty: false });
  return { code, stdout, stderr };
}

const cli = (cwd: string, ...args: string[]) => cliEnv(cwd, process.env, ...args);

function files(root: string): string[] {
  return (readdirSync(root, { recursive: true, withFileTypes: true }) as Array<{ isFile(): boolean; parentPath: string; name: string }>)
    .filter((e) => e.isFile() && !join(e.parentPath, e.name).includes(`${root}/.git/`))
    .map((e) => join(e.parentPath, e.name).slice(root.length + 1))
    .sort();
}

const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();

const KINDS: Record<string, DocumentKind> = { Registry: 'Registry', Model: 'Model', ModelVersion: 'ModelVersion', PromotionPolicy: 'PromotionPolicy' };

/** Every registry document loads cleanly, and every artifact URI lives in the configured store. */
function checkRegistry(root: string, store: string): void {
  for (const path of files(root).filter((f) => /^(modelgate\.yaml|policies\/.*|models\/.*)\.yaml$|^modelgate\.yaml$/.test(f))) {
    const text = readFileSync(join(root, path), 'utf8');
    const kind = KINDS[String(parseDocument(text).get('kind'))]!;
    const loaded = loadManifest(text, path, kind);
    expect({ path, problems: loaded.problems }).toEqual({ path, problems: [] });
    if (kind === 'ModelVersion') expect((loaded.value as { artifact: { uri: string } }).artifact.uri.startsWith(`${store}/`)).toBe(true);
  }
}

async function expectValidatePasses(root: string, skip: () => void): Promise<void> {
  const r = await cli(root, '--registry', root, 'validate');
  if (r.code !== 0 && r.stderr.includes('being built')) return skip();
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
}

describe('templateDir', () => {
  it('finds registry-template from the sources, the bundle and its chunks', () => {
    expect(templateDir()).toBe(TEMPLATE);
    expect(templateDir(join(PROJECT, 'dist/cli.js'))).toBe(TEMPLATE);
    expect(templateDir(join(PROJECT, 'dist/chunks/init-abc.js'))).toBe(TEMPLATE);
    expect(templateDir('/nowhere/dist/cli.js')).toBeUndefined();
  });
});

describe('spliceScalars', () => {
  it('replaces only the chosen scalars and keeps their quoting and everything else', () => {
    const text = `# comment\na: old   # trailing\nb: 'old'\nc: "old"\nd: [old, keep]\ne: |\n  old\n---\nf: {x: old}\n`;
    expect(spliceScalars(text, (v) => (v === 'old' ? "n'ew: x" : undefined))).toBe(
      `# comment\na: "n'ew: x"   # trailing\nb: 'n''ew: x'\nc: "n'ew: x"\nd: ["n'ew: x", keep]\ne: |\n  old\n---\nf: {x: "n'ew: x"}\n`,
    );
    expect(spliceScalars(text, (v) => (v === 'old' ? 's3://b/p' : undefined))).toBe(
      `# comment\na: s3://b/p   # trailing\nb: 's3://b/p'\nc: "s3://b/p"\nd: [s3://b/p, keep]\ne: |\n  old\n---\nf: {x: s3://b/p}\n`,
    );
  });
});

describe('spliceScalars regressions', () => {
  it('quotes a plain replacement that would read back as another type or split a flow list', () => {
    const text = `a: old\nd: [old, keep]\n`;
    const out = spliceScalars(text, (v) => (v === 'old' ? '123' : undefined));
    expect(out).toBe(`a: "123"\nd: ["123", keep]\n`);
    expect(parse(out)).toEqual({ a: '123', d: ['123', 'keep'] });
    const commas = spliceScalars(text, (v) => (v === 'old' ? 'x,y' : undefined));
    expect(parse(commas)).toEqual({ a: 'x,y', d: ['x,y', 'keep'] });
  });

  it('refuses a template without modelgate.yaml with a stable code', () => {
    expect(() => instantiateTemplate(new Map([['README.md', 'x']]), {})).toThrow(expect.objectContaining({ code: 'E_TEMPLATE_MISSING' }));
  });
});

describe('modelgate init', () => {
  it('instantiates the template with an s3 store and a GitHub repository, committed on main', async (ctx) => {
    const dir = join(tmp, 's3');
    const r = await cli(tmp, 'init', 's3', '--store', 's3://acme-models/registry/', '--github', 'acme/ml-registry');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Created a model registry in s3');
    // An empty registry: the template without the example model and its pins.
    expect(files(dir)).toEqual(files(TEMPLATE).filter((f) => !isExampleFile(f)));
    expect(files(dir).some((f) => f.startsWith('models/'))).toBe(false);

    const config = readFileSync(join(dir, 'modelgate.yaml'), 'utf8');
    const original = readFileSync(join(TEMPLATE, 'modelgate.yaml'), 'utf8');
    const before = parseDocument(original);
    // An s3 store needs no claim: the template's storage.pvc line and its comment go.
    const pvcBlock = /\n( {2}# [^\n]*\n)+ {2}pvc: [^\n]*/.exec(original)![0];
    expect(pvcBlock).toContain('pvc: {claim: modelgate-artifacts');
    const expected = original
      .replace(`uri: ${String(before.getIn(['storage', 'uri']))}`, 'uri: s3://acme-models/registry')
      .replace(pvcBlock, '')
      .replace(`repository: ${String(before.getIn(['github', 'repository']))}`, 'repository: acme/ml-registry');
    expect(config).toBe(expected);
    expect(parse(config).storage).toEqual({ uri: 's3://acme-models/registry' });

    checkRegistry(dir, 's3://acme-models/registry');
    for (const f of files(dir).filter((p) => p.startsWith('deploy/') || p.startsWith('argocd/'))) {
      const text = readFileSync(join(dir, f), 'utf8');
      expect(text).not.toContain(String(before.getIn(['storage', 'uri'])));
      expect(text).not.toContain(`github.com/${String(before.getIn(['github', 'repository']))}`);
    }
    // Each Argo CD Application now points at the new repository; nothing else in it changed.
    const argocd = files(TEMPLATE).filter((f) => f.startsWith('argocd/') && f.endsWith('.yaml'));
    expect(argocd).toEqual(['argocd/canary.yaml', 'argocd/production.yaml', 'argocd/serve.yaml', 'argocd/staging.yaml']);
    for (const f of argocd) {
      const template = readFileSync(join(TEMPLATE, f), 'utf8');
      expect(template).toContain('    repoURL: https://github.com/acme/model-registry.git\n');
      expect(readFileSync(join(dir, f), 'utf8'), f).toBe(
        template.replace('repoURL: https://github.com/acme/model-registry.git', 'repoURL: https://github.com/acme/ml-registry.git'),
      );
    }

    expect(git(dir, 'branch', '--show-current')).toBe('main');
    expect(git(dir, 'rev-list', '--count', 'HEAD')).toBe('1');
    expect(git(dir, 'status', '--porcelain')).toBe('');

    const list = await cli(dir, '--json', 'list');
    expect(JSON.parse(list.stdout)).toEqual([]);
    for (const f of ['deploy/production/kustomization.yaml', 'deploy/staging/kustomization.yaml']) {
      expect(parse(readFileSync(join(dir, f), 'utf8')).resources).toEqual(['../base']);
    }
    await expectValidatePasses(dir, () => ctx.skip());
  });

  it('accepts a relative file:// store, recorded as an absolute path', async (ctx) => {
    const r = await cli(tmp, 'init', 'local', '--store', 'file://artifacts');
    expect(r.code).toBe(0);
    const dir = join(tmp, 'local');
    const store = `file://${join(tmp, 'artifacts')}`;
    expect(parseDocument(readFileSync(join(dir, 'modelgate.yaml'), 'utf8')).getIn(['storage', 'uri'])).toBe(store);
    // KServe cannot download file://: the store's folder is named as the root of a PVC.
    expect(parseDocument(readFileSync(join(dir, 'modelgate.yaml'), 'utf8')).toJS().storage.pvc).toEqual({
      claim: 'modelgate-artifacts',
      root: join(tmp, 'artifacts'),
    });
    checkRegistry(dir, store);
    await expectValidatePasses(dir, () => ctx.skip());
    // Empty: no version names an artifact that is not there.
    expect(await cli(dir, 'verify')).toMatchObject({ code: 0, stdout: '0 version(s) verified\n' });
    // The first register → promote → rollback works on it.
    for (const n of [1, 2]) {
      writeFileSync(join(tmp, `churn-${n}.onnx`), `model ${n}\n`);
      expect((await cli(dir, 'register', 'churn', join(tmp, `churn-${n}.onnx`), '--stage', 'Staging', '--run', `id=run-${n}`)).code).toBe(0);
      expect((await cli(dir, 'promote', `churn@${n}`, '--to', 'Production')).code).toBe(0);
    }
    expect((await cli(dir, 'rollback', 'churn')).code).toBe(0);
    expect(parse(readFileSync(join(dir, 'models/churn/versions/1.yaml'), 'utf8')).stage).toBe('Production');
    expect(await cli(dir, 'verify', '--full')).toMatchObject({ code: 0, stdout: '2 version(s) verified (sha256 re-hashed)\n' });
    await expectValidatePasses(dir, () => ctx.skip());
  });

  it('keeps the template as is without flags (less the example), and into an existing empty folder', async () => {
    mkdirSync(join(tmp, 'empty'));
    const r = await cli(join(tmp, 'empty'), '--json', 'init', '.');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ dir: join(tmp, 'empty'), store: null, github: null, example: [] });
    for (const f of files(TEMPLATE).filter((p) => !isExampleFile(p))) {
      const template = readFileSync(join(TEMPLATE, f), 'utf8');
      const expected = /^deploy\/[^/]+\/kustomization\.yaml$/.test(f) ? template.replace('  - fraud-detector.yaml\n', '') : template;
      expect(readFileSync(join(tmp, 'empty', f), 'utf8'), f).toBe(expected);
    }
  });

  it('the template describes the example artifacts init --example writes, byte for byte', () => {
    const store = parse(readFileSync(join(TEMPLATE, 'modelgate.yaml'), 'utf8')).storage.uri;
    for (const a of exampleArtifacts()) {
      const v = parse(readFileSync(join(TEMPLATE, `models/fraud-detector/versions/${a.version}.yaml`), 'utf8'));
      const sha = createHash('sha256').update(a.bytes).digest('hex');
      expect(v.artifact).toEqual({ uri: `${store}/fraud-detector/sha256/${sha}/${a.fileName}`, sha256: sha, size: a.bytes.length });
      expect(v.format).toBe('onnx');
      // An ONNX ModelProto: ir_version (field 1) first, then the producer name.
      expect(a.bytes.subarray(0, 2)).toEqual(Buffer.from([0x08, 0x07]));
      expect(a.bytes.includes(Buffer.from('modelgate-example'))).toBe(true);
    }
  });

  it('init --example writes real artifacts into a file:// store: validate, verify --full, sync --check, promote and rollback pass', async (ctx) => {
    const store = join(tmp, 'example-store');
    const r = await cli(tmp, '--json', 'init', 'example', '--example', '--store', `file://${store}`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const dir = join(tmp, 'example');
    expect(JSON.parse(r.stdout).example.map((e: { version: number; reused: boolean }) => [e.version, e.reused])).toEqual([
      [1, false],
      [2, false],
    ]);
    expect(files(dir)).toEqual(files(TEMPLATE));
    checkRegistry(dir, `file://${store}`);
    await expectValidatePasses(dir, () => ctx.skip());
    expect(await cli(dir, 'verify', '--full')).toMatchObject({ code: 0, stdout: '2 version(s) verified (sha256 re-hashed)\n' });
    expect((await cli(dir, 'sync', '--check')).code).toBe(0);
    const pin = parse(readFileSync(join(dir, 'deploy/production/fraud-detector.yaml'), 'utf8'));
    const v1 = parse(readFileSync(join(dir, 'models/fraud-detector/versions/1.yaml'), 'utf8'));
    expect(pin.spec.predictor.model).toMatchObject({
      modelFormat: { name: 'onnx' },
      protocolVersion: 'v2',
      storageUri: `pvc://modelgate-artifacts/fraud-detector/sha256/${v1.artifact.sha256}/model.onnx`,
    });
    // The first promotion and the rollback after it work on what init left.
    expect((await cli(dir, 'promote', 'fraud-detector@2', '--to', 'Production')).code).toBe(0);
    expect((await cli(dir, 'rollback', 'fraud-detector')).code).toBe(0);
    expect(parse(readFileSync(join(dir, 'deploy/production/fraud-detector.yaml'), 'utf8')).metadata.labels['modelgate.dev/version']).toBe('1');
    expect((await cli(dir, 'sync', '--check')).code).toBe(0);
    expect(git(dir, 'status', '--porcelain')).toBe('');
  });

  it('init --example into an S3 bucket (Swift s3api): objects written, pins point at s3://, verify --full passes', async () => {
    const cfg = s3Config();
    const env = {
      ...process.env,
      AWS_ENDPOINT_URL_S3: cfg.endpoint,
      AWS_ACCESS_KEY_ID: cfg.accessKeyId,
      AWS_SECRET_ACCESS_KEY: cfg.secretAccessKey,
      AWS_REGION: cfg.region,
    };
    const bucket = await createTestBucket('init-example');
    const r = await cliEnv(tmp, env, 'init', 's3-example', '--example', '--store', `s3://${bucket}/registry`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const dir = join(tmp, 's3-example');
    const pin = parse(readFileSync(join(dir, 'deploy/staging/fraud-detector.yaml'), 'utf8'));
    const v2 = parse(readFileSync(join(dir, 'models/fraud-detector/versions/2.yaml'), 'utf8'));
    expect(v2.artifact.uri.startsWith(`s3://${bucket}/registry/fraud-detector/sha256/`)).toBe(true);
    expect(pin.spec.predictor.model.storageUri).toBe(v2.artifact.uri);
    expect(parse(readFileSync(join(dir, 'modelgate.yaml'), 'utf8')).storage.pvc).toBeUndefined();
    expect(await cliEnv(dir, env, 'verify', '--full')).toMatchObject({ code: 0, stdout: '2 version(s) verified (sha256 re-hashed)\n' });
    expect((await cliEnv(dir, env, 'sync', '--check')).code).toBe(0);
    // A second init into the same bucket finds the bytes already there.
    const again = await cliEnv(tmp, env, '--json', 'init', 's3-example-2', '--example', '--store', `s3://${bucket}/registry`);
    expect(JSON.parse(again.stdout).example.map((e: { reused: boolean }) => e.reused)).toEqual([true, true]);
  });

  it('init --example leaves no folder behind when the store cannot be written', async () => {
    const r = await cliEnv(
      tmp,
      { ...process.env, AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y', MODELGATE_IO_TIMEOUT: '5' },
      'init',
      'unreachable',
      '--example',
      '--store',
      's3://nowhere-bucket/r',
    );
    expect(r.code).toBe(3);
    expect(readdirSync(tmp)).not.toContain('unreachable');
  });

  it('init cancelled by SIGTERM or SIGINT leaves no folder behind (exit 143 / 130)', async () => {
    // The signal goes as soon as the folder appears; a run that finished first is run again.
    let cancelled = 0;
    for (let i = 0; cancelled < 2 && i < 20; i++) {
      const [signal, code] = cancelled === 0 ? (['SIGTERM', 143] as const) : (['SIGINT', 130] as const);
      const dir = join(tmp, `cancelled-${i}`);
      const child = spawn(process.execPath, [join(PROJECT, 'dist/cli.js'), 'init', dir], { stdio: 'ignore' });
      const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
      let done = false;
      void exited.then(() => (done = true));
      while (!done && !existsSync(dir)) await new Promise((r) => setTimeout(r, 2));
      child.kill(signal);
      const exit = await exited;
      if (exit === 0) continue;
      expect(exit).toBe(code);
      expect(existsSync(dir)).toBe(false);
      cancelled++;
    }
    expect(cancelled).toBe(2);
  });

  it('refuses a non-empty folder, a file, and bad flags (exit 2) without writing', async () => {
    mkdirSync(join(tmp, 'full'));
    writeFileSync(join(tmp, 'full', 'notes.txt'), 'mine');
    const full = await cli(tmp, 'init', 'full');
    expect(full.code).toBe(2);
    expect(full.stderr).toContain('full is not empty');
    expect(readdirSync(join(tmp, 'full'))).toEqual(['notes.txt']);
    expect((await cli(tmp, 'init', 'full/notes.txt')).code).toBe(2);
    for (const args of [['--store', 'ftp://x/y'], ['--store', 's3://'], ['--store', 'file://'], ['--github', 'not-a-repo'], ['--unknown']]) {
      const r = await cli(tmp, 'init', 'bad', ...args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
    }
    expect((await cli(tmp, 'init')).code).toBe(2);
    expect(readdirSync(tmp)).not.toContain('bad');
  });

  it("init --github gives CODEOWNERS the new owner's teams and points Argo CD at the new repository", async () => {
    const dir = join(tmp, 'owned');
    const r = await cli(tmp, 'init', 'owned', '--github', 'globex/models');
    expect(r.code, r.stderr).toBe(0);
    const template = readFileSync(join(TEMPLATE, '.github/CODEOWNERS'), 'utf8');
    expect(template).toContain('@acme/platform');
    const owners = readFileSync(join(dir, '.github/CODEOWNERS'), 'utf8');
    expect(owners).toBe(template.replaceAll('@acme/', '@globex/'));
    expect(owners).not.toContain('@acme/');
    expect(readFileSync(join(dir, 'argocd/production.yaml'), 'utf8')).toContain('repoURL: https://github.com/globex/models.git');
  });

  it('instantiateTemplate adds github when the template has none', () => {
    const out = instantiateTemplate(new Map([['modelgate.yaml', 'storage:\n  uri: s3://a/b\n']]), { github: 'o/r' });
    expect(out.get('modelgate.yaml')).toBe('storage:\n  uri: s3://a/b\ngithub: {repository: o/r}\n');
  });
});
