import { mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { runCli } from '../src/cli/main.js';
import { parseMetrics, parseParams } from '../src/lineage/values.js';
import { INPUT_FILE_MAX_BYTES, readInputText } from '../src/lineage/input-file.js';
import { ModelgateError } from '../src/errors.js';
import { parseAnnotations, parseEnvSpec, parseRunSpec } from '../src/lineage/flags.js';

// As DVC writes params.yaml (nested stages, versions with a trailing zero, ids with leading zeros).
const DVC_PARAMS = `prepare:
  split: 0.20
  seed: 007
train:
  n_est: 50
  min_split: 0.01
  model:
    name: rf
    version: 1.10
  warm_start: false
`;
// As dvclive writes metrics.json: nested by split.
const DVCLIVE_METRICS = JSON.stringify({ train: { auc: 0.991, loss: 0.05 }, eval: { auc: 0.953, loss: 0.12 }, step: 9 }, null, 4);

const files: Record<string, string> = { 'params.yaml': DVC_PARAMS, 'metrics.json': DVCLIVE_METRICS };
const read = (p: string) => {
  const text = files[p];
  if (text === undefined) throw new Error('ENOENT');
  return text;
};

describe('metrics and params as pipelines write them', () => {
  it('flattens a DVC params.yaml to dotted keys and keeps every value as written', () => {
    expect(parseParams(['params.yaml'], read)).toEqual({
      'prepare.split': '0.20',
      'prepare.seed': '007',
      'train.n_est': '50',
      'train.min_split': '0.01',
      'train.model.name': 'rf',
      'train.model.version': '1.10',
      'train.warm_start': 'false',
    });
    expect(parseParams(['ver=1.10', 'id=007'], read)).toEqual({ ver: '1.10', id: '007' });
  });

  it('flattens a nested dvclive metrics.json, numbers kept as numbers', () => {
    expect(parseMetrics(['metrics.json'], read)).toEqual({ 'train.auc': 0.991, 'train.loss': 0.05, 'eval.auc': 0.953, 'eval.loss': 0.12, step: 9 });
  });

  it('refuses lists and duplicate keys, naming the key', () => {
    expect(() => parseParams(['p.yaml'], () => 'layers: [64, 32]\n')).toThrow(/parameter "layers" is a list; lists are not stored/);
    expect(() => parseMetrics(['m.json'], () => '{"eval": {"auc": [0.9, 0.8]}}')).toThrow(/metric "eval.auc" is a list/);
    expect(() => parseMetrics(['m.json'], () => '{"auc": 0.9, "auc": 0.8}')).toThrow(/given twice/);
    expect(() => parseMetrics(['m.json'], () => '{"eval.auc": 0.9, "eval": {"auc": 0.8}}')).toThrow(/metric "eval.auc" is given twice/);
  });
});

/** The ModelgateError `f` throws (fails the test when it throws nothing or something else). */
function thrown(f: () => unknown): ModelgateError {
  try {
    f();
  } catch (e) {
    if (e instanceof ModelgateError) return e;
    throw e;
  }
  throw new Error('nothing thrown');
}

describe('metrics and params files: kept exactly or refused, with file, line and key (SPEC §14)', () => {
  const one = (text: string) => () => text;

  it('refuses prototype keys instead of storing them as metric __proto__.x', () => {
    for (const text of ['{"__proto__": {"x": 1}}', '{"a": {"constructor": 1}}', 'a:\n  prototype:\n    b: 1\n']) {
      const e = thrown(() => parseMetrics(['m.json'], one(text)));
      expect(e.code, text).toBe('E_FORBIDDEN_KEY');
      expect(e.data.file).toBe('m.json');
      expect(e.data.line).toBe(text.startsWith('a:') ? 2 : 1);
    }
    expect(thrown(() => parseParams(['p.yaml'], one('x: 1\n__proto__: 2\n'))).data).toEqual({ file: 'p.yaml', line: 2, key: '__proto__' });
    expect(thrown(() => parseMetrics(['__proto__=1'], one(''))).code).toBe('E_FORBIDDEN_KEY');
    expect(thrown(() => parseParams(['a.constructor.b=1'], one(''))).code).toBe('E_FORBIDDEN_KEY');
    const plain = parseMetrics(['m.json'], one('{"proto": 1, "x__proto__": 2}'));
    expect(Object.getPrototypeOf(plain)).toBe(Object.prototype);
    expect(plain).toEqual({ proto: 1, x__proto__: 2 });
  });

  it('refuses integers beyond 2^53 in a metric, keeps them as written in a parameter', () => {
    const e = thrown(() => parseMetrics(['m.json'], one('{\n  "auc": 0.9,\n  "n": 123456789012345678901234567890123\n}')));
    expect(e.code).toBe('E_UNSAFE_INTEGER');
    expect(e.data).toEqual({ file: 'm.json', line: 3, key: 'n' });
    expect(e.message).toMatch(/^m\.json:3: /);
    expect(thrown(() => parseMetrics(['m.yaml'], one('n: 9007199254740993\n'))).code).toBe('E_UNSAFE_INTEGER');
    expect(thrown(() => parseMetrics(['n=9007199254740993'], one(''))).code).toBe('E_USAGE');
    expect(parseMetrics(['m.json'], one('{"n": 9007199254740991, "big": 1e300}'))).toEqual({ n: 9007199254740991, big: 1e300 });
    expect(parseParams(['p.json'], one('{"seed": 123456789012345678901234567890123}'))).toEqual({ seed: '123456789012345678901234567890123' });
  });

  it('refuses NUL and other control characters, escaped or not, naming the line', () => {
    for (const [text, line] of [
      ['{"a": 1,\n "d": "x\\u0000y"}', 2],
      ['a: 1\nd: "x\\0y"\n', 2],
      ['a: 1\nb: 2\nd: x\u0000y\n', 3],
      ['a: 1\nd: x\u0007y\n', 2],
      ['{"a\\u0000b": 1}', 1],
    ] as const) {
      const e = thrown(() => parseParams(['p.yaml'], one(text)));
      expect(e.code, text).toBe('E_ENCODING');
      expect(e.data.line, text).toBe(line);
    }
  });

  it('names the line of every refusal and quotes at most a short excerpt of a value', () => {
    const long = 'x'.repeat(500_000);
    const e = thrown(() => parseMetrics(['m.json'], one(`{\n"auc": 0.9,\n"note": "${long}"\n}`)));
    expect(e.code).toBe('E_METRIC_VALUE');
    expect(e.data).toEqual({ file: 'm.json', line: 3, key: 'note' });
    expect(e.message.length).toBeLessThan(200);
    const key = thrown(() => parseMetrics(['m.json'], one(`{"${long}": 1}`)));
    expect(key.code).toBe('E_METRIC_KEY');
    expect(key.message.length).toBeLessThan(300);
    expect(thrown(() => parseMetrics(['m.json'], one('{"a": 1,\n"b": [1, 2]}'))).data).toEqual({ file: 'm.json', line: 2, key: 'b' });
    expect(thrown(() => parseMetrics(['m.json'], one('{"a": 1,\n"b": }'))).data).toMatchObject({ file: 'm.json', line: 2 });
  });

  it('finds a duplicate among 5,000 metrics in a flow mapping, naming it and its line', () => {
    const keys = Array.from({ length: 5000 }, (_, i) => `"m${i}": ${i}`);
    const text = `{\n${keys.join(',\n')},\n"m1234": 1\n}`;
    const e = thrown(() => parseMetrics(['m.json'], one(text)));
    expect(e.code).toBe('E_DUPLICATE_KEY');
    expect(e.data).toEqual({ file: 'm.json', line: 5002, key: 'm1234' });
    expect(Object.keys(parseMetrics(['m.json'], one(`{${keys.join(', ')}}`)))).toHaveLength(5000);
  });

  it('reads a file only within the size limit, and only when it is UTF-8', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mg-input-file-'));
    const huge = join(dir, 'huge.json');
    writeFileSync(huge, '{"a": "');
    truncateSync(huge, 100 * 1024 * 1024); // sparse: 100 MB without writing them
    const e = thrown(() => readInputText(huge, 'huge.json'));
    expect(e.code).toBe('E_TOO_LARGE');
    expect(e.message.length).toBeLessThan(200);
    const limit = join(dir, 'limit.json');
    writeFileSync(limit, ' '.repeat(INPUT_FILE_MAX_BYTES));
    expect(readInputText(limit, 'limit.json')).toHaveLength(INPUT_FILE_MAX_BYTES);

    const latin1 = join(dir, 'params.yaml');
    writeFileSync(latin1, Buffer.concat([Buffer.from('a: 1\nb: 2\nname: caf'), Buffer.from([0xe9]), Buffer.from('\n')]));
    const bad = thrown(() => readInputText(latin1, 'params.yaml'));
    expect(bad.code).toBe('E_ENCODING');
    expect(bad.data).toEqual({ file: 'params.yaml', line: 3 });
    for (const bytes of [
      [0xc0, 0x80],
      [0xed, 0xa0, 0x80],
      [0xf4, 0x90, 0x80, 0x80],
      [0xe2, 0x82],
    ]) {
      writeFileSync(latin1, Buffer.concat([Buffer.from('a: '), Buffer.from(bytes)]));
      expect(thrown(() => readInputText(latin1, 'p')).code, String(bytes)).toBe('E_ENCODING');
    }
    writeFileSync(latin1, 'name: café ✓ 𝄞\n');
    expect(readInputText(latin1, 'p')).toBe('name: café ✓ 𝄞\n');
  });
});

describe('register with pipeline files', () => {
  it('records them as written; validate passes and --where reads dotted keys', async () => {
    const base = mkdtempSync(join(tmpdir(), 'mg-pipe-'));
    const env = {
      ...process.env,
      GIT_AUTHOR_NAME: 'Maria',
      GIT_AUTHOR_EMAIL: 'maria@example.com',
      GIT_COMMITTER_NAME: 'Maria',
      GIT_COMMITTER_EMAIL: 'maria@example.com',
    };
    const cli = async (args: string[]) => {
      let stdout = '';
      let stderr = '';
      const code = await runCli(args, { cwd: base, env, stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), tty: false });
      return { code, stdout, stderr };
    };
    const store = pathToFileURL(mkdtempSync(join(tmpdir(), 'mg-pipe-store-'))).href;
    expect((await cli(['init', 'reg', '--store', store])).code).toBe(0);
    writeFileSync(join(base, 'params.yaml'), DVC_PARAMS);
    writeFileSync(join(base, 'metrics.json'), DVCLIVE_METRICS);
    writeFileSync(join(base, 'model.joblib'), 'not really a model, but bytes\n');
    const r = await cli(['--registry', 'reg', 'register', 'churn', 'model.joblib', '--params', 'params.yaml', '--metrics', 'metrics.json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('churn@1\n');
    const mv = parse(readFileSync(join(base, 'reg/models/churn/versions/1.yaml'), 'utf8'));
    expect(mv.parameters['train.model.version']).toBe('1.10');
    expect(mv.parameters['prepare.seed']).toBe('007');
    expect(mv.metrics['eval.auc']).toBe(0.953);
    expect((await cli(['--registry', 'reg', 'validate'])).code).toBe(0);
    const hit = await cli(['--json', '--registry', 'reg', 'list', '--where', 'metrics.eval.auc > 0.95 and parameters.train.n_est = 50']);
    expect(hit.code, hit.stderr).toBe(0);
    expect(JSON.parse(hit.stdout).map((v: { model: string }) => v.model)).toEqual(['churn']);
    const miss = await cli(['--json', '--registry', 'reg', 'list', '--where', 'metrics.eval.auc > 0.96']);
    expect(JSON.parse(miss.stdout)).toEqual([]);

    // --run, --env, --signature and --annotation, for pipelines outside GitHub Actions / GitLab CI.
    writeFileSync(join(base, 'signature.json'), JSON.stringify({ inputs: [{ name: 'amount', type: 'double' }], outputs: [{ name: 'score', type: 'double' }] }));
    const r2 = await cli([
      '--registry',
      'reg',
      'register',
      'churn',
      'model.joblib',
      '--run',
      'id=airflow-17,url=https://airflow.example/runs/17,system=airflow',
      '--env',
      'python=3.11.7,requirements=requirements.txt',
      '--signature',
      'signature.json',
      '--annotation',
      'team=risk',
      '--annotation',
      'example.com/owner=maria',
    ]);
    expect(r2.code, r2.stderr).toBe(0);
    const v2 = parse(readFileSync(join(base, 'reg/models/churn/versions/2.yaml'), 'utf8'));
    expect(v2.lineage.run).toEqual({ id: 'airflow-17', url: 'https://airflow.example/runs/17', system: 'airflow' });
    expect(v2.lineage.environment).toEqual({ python: '3.11.7', requirements: 'requirements.txt' });
    expect(v2.signature.outputs).toEqual([{ name: 'score', type: 'double' }]);
    expect(v2.annotations).toEqual({ team: 'risk', 'example.com/owner': 'maria' });
    expect((await cli(['--registry', 'reg', 'validate'])).code).toBe(0);
    const hasRun = await cli(['--json', '--registry', 'reg', 'list', '--where', "lineage.run.id = 'airflow-17'"]);
    expect(JSON.parse(hasRun.stdout).map((v: { version: number }) => v.version)).toEqual([2]);

    // A 100 MB metrics file is refused before it is read, in one short line; so is one with bytes that are not UTF-8.
    writeFileSync(join(base, 'huge.json'), '{"a": "');
    truncateSync(join(base, 'huge.json'), 100 * 1024 * 1024);
    const huge = await cli(['--registry', 'reg', 'register', 'churn', 'model.joblib', '--metrics', 'huge.json', '--json']);
    expect(huge.code).toBe(1);
    expect(JSON.parse(huge.stdout).error).toMatchObject({ code: 'E_TOO_LARGE', file: 'huge.json' });
    expect(huge.stdout.length + huge.stderr.length).toBeLessThan(1000);
    writeFileSync(join(base, 'latin1.yaml'), Buffer.concat([Buffer.from('seed: 7\nname: caf'), Buffer.from([0xe9]), Buffer.from('\n')]));
    const latin1 = await cli(['--registry', 'reg', 'register', 'churn', 'model.joblib', '--params', 'latin1.yaml', '--json']);
    expect(latin1.code).toBe(1);
    expect(JSON.parse(latin1.stdout).error).toMatchObject({ code: 'E_ENCODING', file: 'latin1.yaml', line: 2 });
  });

  it('refuses malformed --run, --env and --annotation values, saying what is expected', () => {
    expect(() => parseRunSpec('url=https://x')).toThrow(/id=… is required/);
    expect(() => parseRunSpec('id=1,url=ftp://x')).toThrow(/http\(s\) URL/);
    expect(() => parseEnvSpec('python=3.11,colour=red')).toThrow(/expected python=…,requirements=…,image=…,node=…/);
    expect(() => parseEnvSpec('python=3.11,python=3.12')).toThrow(/given twice/);
    expect(() => parseAnnotations(['Team=x'])).toThrow(/Kubernetes label/);
    expect(() => parseAnnotations(['team=a', 'team=b'])).toThrow(/given twice/);
  });
});
