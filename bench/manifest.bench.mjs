// Manifest loading: schema compile time, loader throughput on typical version manifests, and
// a whole-registry `validate` over generated versions. Uses the built dist/.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const node = process.execPath;

function versionText(template, model, v, stage) {
  const sha = createHash('sha256').update(`${model}/${v}`).digest('hex');
  return template
    .replaceAll('fraud-detector', model)
    .replaceAll('e15fd8ad97d4a9289ddd70c2963ff51d123c1e7b5024533a65f7ddd4aef0a410', sha)
    .replace('version: 2', `version: ${v}`)
    .replace('stage: Staging', `stage: ${stage}`)
    .replace('auc: 0.978', `auc: ${(0.9 + (v % 97) / 1000).toFixed(3)}`);
}

export async function run() {
  const rows = [];
  const compile = execFileSync(node, ['--input-type=module', '-e', `
    const { validators } = await import(${JSON.stringify(join(root, 'dist/index.js'))});
    const t = performance.now(); validators(); console.log(performance.now() - t);`]).toString();
  rows.push({ name: 'compile all four schemas (ajv, strict)', value: Number(compile), unit: 'ms', target: 150, pass: Number(compile) <= 150 });

  const { loadManifest, loadManifestWithPositions, validateRegistry, WorktreeSource } = await import(join(root, 'dist/index.js'));
  const template = readFileSync(join(root, 'registry-template/models/fraud-detector/versions/2.yaml'), 'utf8');
  const docs = Array.from({ length: 1000 }, (_, i) => ({ file: `models/fraud-detector/versions/${i + 1}.yaml`, text: versionText(template, 'fraud-detector', i + 1, 'Archived') }));
  const rate = (load) => {
    for (const d of docs) load(d.text, d.file, 'ModelVersion');
    let n = 0;
    const t = performance.now();
    while (performance.now() - t < 1500) for (const d of docs) (load(d.text, d.file, 'ModelVersion'), n++);
    return n / ((performance.now() - t) / 1000);
  };
  const fast = rate(loadManifest);
  rows.push({ name: `loadManifest, typical version manifest (${Math.round(fast)} docs/s)`, value: 1e6 / fast, unit: 'µs/doc', target: 100, pass: 1e6 / fast <= 100 });
  const full = rate(loadManifestWithPositions);
  rows.push({ name: `position-keeping path, used for errors (${Math.round(full)} docs/s)`, value: 1e6 / full, unit: 'µs/doc' });

  const dir = mkdtempSync(join(tmpdir(), 'mg-bench-validate-'));
  try {
    cpSync(join(root, 'registry-template'), dir, { recursive: true });
    const models = 200, perModel = 100;
    const model = readFileSync(join(root, 'registry-template/models/fraud-detector/model.yaml'), 'utf8');
    for (let m = 0; m < models; m++) {
      const name = `model-${m}`;
      mkdirSync(join(dir, 'models', name, 'versions'), { recursive: true });
      writeFileSync(join(dir, 'models', name, 'model.yaml'), model.replace('name: fraud-detector', `name: ${name}`));
      for (let v = 1; v <= perModel; v++) writeFileSync(join(dir, 'models', name, 'versions', `${v}.yaml`), versionText(template, name, v, v === perModel ? 'Production' : 'Archived'));
    }
    const t = performance.now();
    const result = await validateRegistry(new WorktreeSource(dir));
    const seconds = (performance.now() - t) / 1000;
    if (!result.valid) throw new Error(`generated registry invalid: ${result.problems[0]?.message}`);
    rows.push({ name: `validate whole registry, ${models * perModel} versions`, value: seconds, unit: 's', target: 2, pass: seconds <= 2 });
    rows.push({ name: 'validate throughput (files/s)', value: result.checked / seconds, unit: 'files/s' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
