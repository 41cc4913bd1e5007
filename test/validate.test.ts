import { execFileSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/main.js';
import { loadManifest } from '../src/manifest/load.js';
import { checkRegistry } from '../src/manifest/semantic.js';
import { quickStage } from '../src/registry/layout.js';
import type { ModelVersion, Registry } from '../src/manifest/types.js';
import { directoryDigest } from '../src/store/digest.js';

const TEMPLATE = join(import.meta.dirname, '../registry-template');
const V1 = 'models/fraud-detector/versions/1.yaml';
const V2 = 'models/fraud-detector/versions/2.yaml';
const temps: string[] = [];
afterAll(() => Promise.all(temps.map((d) => rm(d, { recursive: true, force: true }))));

/** A fresh copy of registry-template/, optionally broken by `edit`. */
async function registry(edit?: (root: string) => Promise<void>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'mg-validate-'));
  temps.push(root);
  await cp(TEMPLATE, root, { recursive: true });
  await edit?.(root);
  return root;
}

async function replaceIn(root: string, file: string, from: string, to: string) {
  const text = await readFile(join(root, file), 'utf8');
  if (!text.includes(from)) throw new Error(`${file} does not contain ${from}`);
  await writeFile(join(root, file), text.replace(from, to));
}

async function validate(cwd: string, ...args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(['validate', ...args], { cwd, env: {}, tty: false, stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
  return { code, stdout, stderr, lines: stderr.split('\n').filter((l) => /^\S+:\d+(:\d+)?: /.test(l) || /^models\/\S+: /.test(l)) };
}

describe('modelgate validate', () => {
  it('accepts the registry template as shipped', async () => {
    const root = await registry();
    const r = await validate(root);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('5 files checked, all valid\n');
    const json = await validate(root, '--json');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ valid: true, problems: [], checked: 5 });
  });

  it('refuses a version with bytes that are not UTF-8 or a NUL, at file and line (SPEC §14)', async () => {
    const root = await registry(async (r) => {
      const text = await readFile(join(r, V2), 'utf8');
      const [head, tail] = [text.slice(0, text.indexOf('description:')), text.slice(text.indexOf('description:'))];
      await writeFile(
        join(r, V2),
        Buffer.concat([Buffer.from(head), Buffer.from('description: caf'), Buffer.from([0xe9]), Buffer.from(tail.slice(tail.indexOf('\n')))]),
      );
      await replaceIn(r, V1, 'description: ', 'description: "nul \\0 here" # ');
    });
    const json = JSON.parse((await validate(root, '--json')).stdout);
    expect(json.valid).toBe(false);
    // Both templates write their description on line 8.
    expect(json.problems.map((p: { file: string; code: string; line: number }) => [p.file, p.code, p.line]).sort()).toEqual([
      [V1, 'E_ENCODING', 8],
      [V2, 'E_ENCODING', 8],
    ]);
  });

  it('rejects two versions in Production, pointing at the later one', async () => {
    const root = await registry((r) => replaceIn(r, V2, 'stage: Staging', 'stage: Production'));
    const r = await validate(root);
    expect(r.code).toBe(1);
    expect(r.lines).toEqual([
      `${V2}:5:1: fraud-detector has 2 versions in Production (1, 2); at most one version of a model may be in Production: archive the others`,
    ]);
    const json = JSON.parse((await validate(root, '--json')).stdout);
    expect(json.valid).toBe(false);
    expect(json.problems).toMatchObject([{ file: V2, line: 5, col: 1, code: 'E_MULTIPLE_PRODUCTION' }]);
  });

  it('reports the model-wide rule when only the earlier file is named', async () => {
    const root = await registry((r) => replaceIn(r, V2, 'stage: Staging', 'stage: Production'));
    const r = await validate(root, V1);
    expect(r.code).toBe(1);
    expect(r.lines).toEqual([expect.stringMatching(new RegExp(`^${V2}:5:1: fraud-detector has 2 versions in Production`))]);
  });

  it('reads the stage of a version it does not validate exactly as the parser would: quoted, commented, nested', async () => {
    for (const stage of ['stage: "Production"', "stage: 'Production'", 'stage: Production   # promoted']) {
      const root = await registry((r) => replaceIn(r, V2, 'stage: Staging', stage));
      const r = await validate(root, V1);
      expect(r.lines, stage).toEqual([expect.stringMatching(new RegExp(`^${V2}:5:1: fraud-detector has 2 versions in Production`))]);
    }
    // A `stage:` key nested deeper (an annotation) is not the version's stage.
    const nested = await registry(async (r) => {
      await writeFile(join(r, V2), `${await readFile(join(r, V2), 'utf8')}annotations:\n  stage: Production\n`);
    });
    expect((await validate(nested, V1)).code).toBe(0);
  });

  it('is not misled by a decoy stage line in a version written as one flow mapping', async () => {
    // A top-level flow mapping may continue at column 0, so a nested `stage:` line can look like
    // the document's own key: the real stage (Production) is in the flow, the decoy says Archived.
    const root = await registry(async (r) => {
      const v2 = (await import('js-yaml')).load(await readFile(join(r, V2), 'utf8')) as Record<string, unknown>;
      const json = JSON.stringify({ ...v2, stage: 'Production', annotations: undefined });
      await writeFile(join(r, V2), `${json.slice(0, -1)}, "annotations": {"validation_status": "passed",\nstage: Archived\n}}\n`);
    });
    const full = await validate(root);
    expect(full.lines).toEqual([expect.stringMatching(new RegExp(`^${V2}:\\d+:\\d+: fraud-detector has 2 versions in Production`))]);
    const partial = await validate(root, V1);
    expect(partial.code).toBe(1);
    expect(partial.lines).toEqual(full.lines);
  });

  it('reads a stage from the text only where the loader would read the same one', async () => {
    const base = await readFile(join(TEMPLATE, V2), 'utf8');
    const decoy = 'annotations: {validation_status: passed}';
    const variants: Record<string, string> = {
      plain: base,
      commented: base.replace('stage: Staging', 'stage: Staging # next'),
      'flow continued at column 0': base.replace(decoy, 'annotations: {validation_status: passed,\nstage: Production\n}'),
      'explicit key': base.replace('stage: Staging\n', '? stage\n: Production\n'),
      'explicit key and a column-0 decoy': base
        .replace('stage: Staging\n', '? stage\n: Production\n')
        .replace(decoy, 'annotations: {x: y,\nstage: Archived\n}'),
      'anchored key': base.replace('stage: Staging\n', '&k stage: Production\n'),
      'quoted key': base.replace('stage: Staging', '"stage": Production'),
      'document marker': `---\n${base}`,
      'second document': `${base}---\nstage: Archived\n`,
      'escaped key and a column-0 decoy': base.replace('stage: Staging', '"st\\u0061ge": Production').replace(decoy, 'annotations: {x: y,\nstage: Archived\n}'),
      'one flow mapping': `${JSON.stringify({ ...(loadManifest(base, V2, 'ModelVersion').value as object), stage: 'Production', annotations: undefined }).slice(0, -1)},\n"annotations": {\nstage: Archived\n}}\n`,
    };
    // A manifest the loader refuses never reaches a registry that validated; for every other
    // one the text gives its stage or nothing.
    const loads: string[] = [];
    for (const [name, text] of Object.entries(variants)) {
      const loaded = loadManifest(text, V2, 'ModelVersion').value;
      if (!loaded) continue;
      loads.push(name);
      const read = quickStage(text);
      if (read !== undefined) expect(read, name).toBe(loaded.stage);
    }
    expect(loads).toEqual(expect.arrayContaining(['plain', 'commented', 'quoted key', 'document marker', 'one flow mapping']));
    expect(quickStage(variants.plain!)).toBe('Staging');
    expect(quickStage(variants['one flow mapping']!)).toBeUndefined();
  });

  it('rejects an artifact URI outside the registry store', async () => {
    const root = await registry((r) => replaceIn(r, V2, 'uri: file:///var/lib/modelgate/artifacts/', 'uri: s3://elsewhere/'));
    const r = await validate(root);
    expect(r.code).toBe(1);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatch(
      new RegExp(`^${V2}:10:3: artifact\\.uri s3://elsewhere/fraud-detector/sha256/\\S+ is outside the registry's store file:///var/lib/modelgate/artifacts`),
    );
  });

  it('rejects an artifact URI that embeds another digest', async () => {
    const root = await registry((r) => replaceIn(r, V2, 'sha256/2ed73859', 'sha256/3ed73859'));
    const r = await validate(root, '--json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).problems).toMatchObject([{ file: V2, line: 10, col: 3, code: 'E_ARTIFACT_URI' }]);
  });

  it('rejects a version file whose version differs from its name', async () => {
    const v3 = 'models/fraud-detector/versions/3.yaml';
    const root = await registry((r) => rename(join(r, V2), join(r, v3)));
    const r = await validate(root);
    expect(r.code).toBe(1);
    expect(r.lines).toEqual([`${v3}:4:1: version is 2 but the file is 3.yaml; a version's number equals its file name`]);
  });

  it('rejects versions without a model.yaml', async () => {
    const root = await registry((r) => rm(join(r, 'models/fraud-detector/model.yaml')));
    const r = await validate(root);
    expect(r.code).toBe(1);
    expect(r.lines).toEqual([
      'models/fraud-detector/model.yaml: fraud-detector has 2 versions but no models/fraud-detector/model.yaml; add one (kind: Model, name: fraud-detector)',
    ]);
  });

  it('rejects invalid model folders and stray files', async () => {
    const root = await registry(async (r) => {
      await mkdir(join(r, 'models/Bad_Name/versions'), { recursive: true });
      await writeFile(join(r, 'models/Bad_Name/versions/1.yaml'), 'x: 1\n');
      await writeFile(join(r, 'models/fraud-detector/notes.txt'), 'hello\n');
      await cp(join(r, V1), join(r, 'models/fraud-detector/versions/01.yaml'));
      await writeFile(join(r, 'models/fraud-detector/README.md'), '# fraud\n');
    });
    const r = await validate(root, '--json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).problems.map((p: { file: string; code: string }) => [p.file, p.code])).toEqual([
      ['models/Bad_Name', 'E_MODEL_NAME'],
      ['models/fraud-detector/notes.txt', 'E_STRAY_FILE'],
      ['models/fraud-detector/versions/01.yaml', 'E_STRAY_FILE'],
    ]);
  });

  it('reports hostile and invalid documents with file, line and column', async () => {
    const root = await registry(async (r) => {
      await replaceIn(r, V1, 'metrics: {auc: 0.962', 'metrics: {auc: "0.962"');
      await replaceIn(r, V2, 'model: fraud-detector', 'model: &m fraud-detector');
      await replaceIn(r, 'modelgate.yaml', 'kind: Registry', 'kind: Registry\nstorage2: {}');
    });
    const r = await validate(root);
    expect(r.code).toBe(1);
    expect(r.lines).toEqual([
      expect.stringMatching(/^modelgate\.yaml:\d+:1: unknown field "storage2"/),
      `${V1}:15:11: metrics.auc must be a finite number, got the string "0.962"`,
      `${V2}:3:8: model: YAML anchors (&m) are not allowed in manifests`,
    ]);
    expect(r.stderr).toMatch(/3 problems in 3 file\(s\)\n$/);
  });

  it('rejects a file over the size limit in validate, list and show (E_TOO_LARGE)', async () => {
    const v3 = 'models/fraud-detector/versions/3.yaml';
    const huge = await registry((r) => writeFile(join(r, v3), `description: "${'x'.repeat(3 * 1024 * 1024)}"\n`));
    const r = await validate(huge, '--json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).problems).toEqual([
      {
        file: v3,
        line: 1,
        col: 1,
        code: 'E_TOO_LARGE',
        message: 'the file has more than 262144 bytes, the limit for a manifest; this looks like hostile input or the wrong file',
      },
    ]);
    for (const args of [['list'], ['show', 'fraud-detector@latest'], ['list', '--model', 'fraud-detector']]) {
      let stderr = '';
      const code = await runCli(['--registry', huge, ...args], { cwd: huge, env: {}, tty: false, stdout: () => {}, stderr: (t) => void (stderr += t) });
      expect({ args, code }).toEqual({ args, code: 1 });
      expect(stderr).toContain(`${v3}:1:1: the file has more than 262144 bytes`);
    }
  });

  it('names a folder, FIFO or device where a manifest belongs (E_NOT_A_FILE, exit 1) instead of crashing or hanging', async () => {
    const v3 = 'models/fraud-detector/versions/3.yaml';
    const folder = await registry((r) => mkdir(join(r, v3)));
    const r = await validate(folder, '--json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).error).toMatchObject({ code: 'E_NOT_A_FILE', message: `${v3}: is a folder, not a file; registry manifests are plain files` });
    const fifo = await registry(async (root) => void execFileSync('mkfifo', [join(root, v3)]));
    const f = await validate(fifo);
    expect(f.code).toBe(1);
    expect(f.stderr).toContain(`${v3}: is a FIFO, not a file`);
    // A link to /dev/zero would never end if it were read whole.
    const zero = await registry((r) => symlink('/dev/zero', join(r, v3)));
    for (const args of [['validate'], ['list'], ['show', 'fraud-detector@latest'], ['list', '--stage', 'production']]) {
      let stdout = '';
      const code = await runCli(['--json', '--registry', zero, ...args], {
        cwd: zero,
        env: {},
        tty: false,
        stdout: (t) => void (stdout += t),
        stderr: () => {},
      });
      expect({ args, code, error: JSON.parse(stdout).error }).toEqual({
        args,
        code: 1,
        error: { code: 'E_NOT_A_FILE', message: `${v3}: is a device, not a file; registry manifests are plain files`, file: v3 },
      });
    }
  });

  it('validates only the named files, relative to the current folder', async () => {
    const root = await registry((r) => replaceIn(r, V1, 'metrics: {auc: 0.962', 'metrics: {auc: "0.962"'));
    expect((await validate(join(root, 'models'), 'fraud-detector/versions/2.yaml')).code).toBe(0);
    const r = await validate(join(root, 'models/fraud-detector'), 'versions');
    expect(r.code).toBe(1);
    expect(r.lines).toEqual([`${V1}:15:11: metrics.auc must be a finite number, got the string "0.962"`]);
  });

  it('exits 2 on usage errors', async () => {
    const root = await registry(async (r) => writeFile(join(r, 'README.md'), '# registry\n'));
    expect((await validate(root, 'models/nope.yaml')).code).toBe(2);
    expect((await validate(root, '../outside.yaml')).code).toBe(2);
    expect((await validate(root, 'README.md')).code).toBe(2);
    expect((await validate(root, '--frobnicate')).code).toBe(2);
    const outside = await mkdtemp(join(tmpdir(), 'mg-no-registry-'));
    temps.push(outside);
    expect((await validate(outside)).code).toBe(2);
  });
});

describe('checkRegistry (pure cross-file rules)', () => {
  const config: Registry = { apiVersion: 'modelgate.dev/v1', kind: 'Registry', storage: { uri: 's3://ml-models/registry/' } };
  const files = [
    { path: 'MLmodel', sha256: 'a'.repeat(64), size: 312 },
    { path: 'data/model.pkl', sha256: 'b'.repeat(64), size: 3 },
  ];
  const digest = directoryDigest(files);
  const version = (artifact: ModelVersion['artifact']): ModelVersion => ({
    apiVersion: 'modelgate.dev/v1',
    kind: 'ModelVersion',
    model: 'churn',
    version: 1,
    stage: 'None',
    createdAt: '2026-01-01T00:00:00Z',
    format: 'mlflow',
    artifact,
  });
  const check = (v: ModelVersion, paths = ['models/churn/model.yaml', 'models/churn/versions/1.yaml']) =>
    checkRegistry({ config, models: [], versions: [{ file: 'models/churn/versions/1.yaml', value: v }], files: paths });

  it('accepts a consistent directory artifact whose URI ends at its digest folder', () => {
    expect(check(version({ uri: `s3://ml-models/registry/churn/sha256/${digest}/`, sha256: digest, size: 315, files }))).toEqual([]);
  });

  it('rejects a directory artifact whose digest, size or paths do not match its files', () => {
    const wrong = 'c'.repeat(64);
    const codes = (v: ModelVersion) => check(v).map((p) => [p.code, p.field]);
    expect(codes(version({ uri: `s3://ml-models/registry/churn/sha256/${wrong}/`, sha256: wrong, size: 315, files }))).toEqual([
      ['E_ARTIFACT_FILES', 'artifact.sha256'],
    ]);
    expect(codes(version({ uri: `s3://ml-models/registry/churn/sha256/${digest}/`, sha256: digest, size: 316, files }))).toEqual([
      ['E_ARTIFACT_FILES', 'artifact.size'],
    ]);
    const escaping = [{ path: '../etc/passwd', sha256: 'a'.repeat(64), size: 1 }];
    expect(codes(version({ uri: `s3://ml-models/registry/churn/sha256/${digest}/`, sha256: digest, size: 1, files: escaping }))).toEqual([
      ['E_ARTIFACT_FILES', 'artifact.files[0].path'],
    ]);
  });

  it('rejects file artifacts without a file name, or under another model', () => {
    const sha = 'd'.repeat(64);
    expect(check(version({ uri: `s3://ml-models/registry/churn/sha256/${sha}/`, sha256: sha, size: 1 })).map((p) => p.code)).toEqual(['E_ARTIFACT_URI']);
    expect(check(version({ uri: `s3://ml-models/registry/fraud/sha256/${sha}/m.onnx`, sha256: sha, size: 1 })).map((p) => p.code)).toEqual(['E_ARTIFACT_URI']);
    expect(check(version({ uri: `s3://ml-models/registry-other/churn/sha256/${sha}/m.onnx`, sha256: sha, size: 1 })).map((p) => p.code)).toEqual([
      'E_ARTIFACT_URI',
    ]);
  });

  it('uses the same path rules as the loader', () => {
    const v = loadManifest(`apiVersion: modelgate.dev/v1\nkind: Model\nname: churn\n`, 'models/churn/model.yaml', 'Model').value!;
    expect(checkRegistry({ models: [{ file: 'models/other/model.yaml', value: v }], versions: [] }).map((p) => p.code)).toEqual(['E_PATH_MISMATCH']);
  });
});
