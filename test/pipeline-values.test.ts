import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { runCli } from '../src/cli/main.js';
import { parseMetrics, parseParams } from '../src/lineage/values.js';
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
