import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, parseDocument } from 'yaml';
import { runCli } from '../src/cli/main.js';
import { loadManifest, type DocumentKind } from '../src/manifest/load.js';
import { instantiateTemplate, spliceScalars, templateDir } from '../src/registry/template.js';

const PROJECT = resolve(fileURLToPath(import.meta.url), '../..');
const TEMPLATE = join(PROJECT, 'registry-template');
const tmp = mkdtempSync(join(tmpdir(), 'modelgate-init-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function cli(cwd: string, ...args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { cwd, env: process.env, stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), tty: false });
  return { code, stdout, stderr };
}

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
    expect(files(dir)).toEqual(files(TEMPLATE));

    const config = readFileSync(join(dir, 'modelgate.yaml'), 'utf8');
    const original = readFileSync(join(TEMPLATE, 'modelgate.yaml'), 'utf8');
    const before = parseDocument(original);
    const expected = original
      .replace(`uri: ${String(before.getIn(['storage', 'uri']))}`, 'uri: s3://acme-models/registry')
      .replace(`repository: ${String(before.getIn(['github', 'repository']))}`, 'repository: acme/ml-registry');
    expect(config).toBe(expected);

    checkRegistry(dir, 's3://acme-models/registry');
    for (const f of files(dir).filter((p) => p.startsWith('deploy/') || p.startsWith('argocd/'))) {
      const text = readFileSync(join(dir, f), 'utf8');
      expect(text).not.toContain(String(before.getIn(['storage', 'uri'])));
      expect(text).not.toContain(`github.com/${String(before.getIn(['github', 'repository']))}`);
    }
    // Each Argo CD Application now points at the new repository; nothing else in it changed.
    const argocd = files(TEMPLATE).filter((f) => f.startsWith('argocd/') && f.endsWith('.yaml'));
    expect(argocd).toEqual(['argocd/production.yaml', 'argocd/staging.yaml']);
    for (const f of argocd) {
      const template = readFileSync(join(TEMPLATE, f), 'utf8');
      expect(template).toContain('    repoURL: https://github.com/acme/model-registry.git\n');
      expect(readFileSync(join(dir, f), 'utf8'), f).toBe(template.replace('repoURL: https://github.com/acme/model-registry.git', 'repoURL: https://github.com/acme/ml-registry.git'));
    }

    expect(git(dir, 'branch', '--show-current')).toBe('main');
    expect(git(dir, 'rev-list', '--count', 'HEAD')).toBe('1');
    expect(git(dir, 'status', '--porcelain')).toBe('');

    const list = await cli(dir, '--json', 'list', '--stage', 'production');
    expect(JSON.parse(list.stdout).map((v: { model: string; version: number }) => `${v.model}@${v.version}`)).toEqual(['fraud-detector@1']);
    const history = await cli(dir, '--json', 'history', 'fraud-detector');
    expect(JSON.parse(history.stdout).map((c: { version: number; from: null; to: string }) => [c.version, c.from, c.to])).toEqual([
      [1, null, 'Production'],
      [2, null, 'Staging'],
    ]);
    await expectValidatePasses(dir, () => ctx.skip());
  });

  it('accepts a relative file:// store, recorded as an absolute path', async (ctx) => {
    const r = await cli(tmp, 'init', 'local', '--store', 'file://artifacts');
    expect(r.code).toBe(0);
    const dir = join(tmp, 'local');
    const store = `file://${join(tmp, 'artifacts')}`;
    expect(parseDocument(readFileSync(join(dir, 'modelgate.yaml'), 'utf8')).getIn(['storage', 'uri'])).toBe(store);
    // KServe cannot download file://: the store's folder is named as the root of a PVC.
    expect(parseDocument(readFileSync(join(dir, 'modelgate.yaml'), 'utf8')).toJS().storage.pvc).toEqual({ claim: 'modelgate-artifacts', root: join(tmp, 'artifacts') });
    checkRegistry(dir, store);
    await expectValidatePasses(dir, () => ctx.skip());
  });

  it('keeps the template as is without flags, and into an existing empty folder', async () => {
    mkdirSync(join(tmp, 'empty'));
    const r = await cli(join(tmp, 'empty'), '--json', 'init', '.');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ dir: join(tmp, 'empty'), store: null, github: null });
    for (const f of files(TEMPLATE)) expect(readFileSync(join(tmp, 'empty', f), 'utf8')).toBe(readFileSync(join(TEMPLATE, f), 'utf8'));
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

  it('init --github gives CODEOWNERS the new owner\'s teams and points Argo CD at the new repository', async () => {
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
