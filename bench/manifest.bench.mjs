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
  // First use of the four validators, generated at build time, against ajv compiling the same
  // schemas at run time (what every start cost before), in the same run.
  const firstUse = execFileSync(node, [
    '--input-type=module',
    '-e',
    `
    const { validators } = await import(${JSON.stringify(join(root, 'dist/index.js'))});
    const t = performance.now(); const v = validators(); for (const k of ['Registry', 'Model', 'ModelVersion', 'PromotionPolicy']) v[k]({}); console.log(performance.now() - t);`,
  ]).toString();
  const runtimeCompile = execFileSync(
    node,
    [
      '--input-type=module',
      '-e',
      `
    const { Ajv2020 } = await import('ajv/dist/2020.js'); const af = (await import('ajv-formats')).default; const fs = await import('node:fs');
    const t = performance.now(); const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true, verbose: true }); (af.default ?? af)(ajv, ['date-time', 'uri']);
    for (const f of ['registry', 'model', 'model-version', 'promotion-policy']) ajv.compile(JSON.parse(fs.readFileSync('schemas/' + f + '.schema.json', 'utf8')))({});
    console.log(performance.now() - t);`,
    ],
    { cwd: root },
  ).toString();
  rows.push({
    name: 'first use of all four validators (built)',
    value: Number(firstUse),
    unit: 'ms',
    baselineName: 'ajv compiling them at run time',
    baseline: Number(runtimeCompile),
    target: 0.25,
    pass: Number(firstUse) <= 0.25 * Number(runtimeCompile),
  });

  const { loadManifest, loadManifestWithPositions, validateRegistry, WorktreeSource } = await import(join(root, 'dist/index.js'));
  const template = readFileSync(join(root, 'registry-template/models/fraud-detector/versions/2.yaml'), 'utf8');
  const docs = Array.from({ length: 1000 }, (_, i) => ({
    file: `models/fraud-detector/versions/${i + 1}.yaml`,
    text: versionText(template, 'fraud-detector', i + 1, 'Archived'),
  }));
  const rate = (load) => {
    for (const d of docs) load(d.text, d.file, 'ModelVersion');
    let n = 0;
    const t = performance.now();
    while (performance.now() - t < 1500) for (const d of docs) (load(d.text, d.file, 'ModelVersion'), n++);
    return n / ((performance.now() - t) / 1000);
  };
  const fast = rate(loadManifest);
  rows.push({
    name: `loadManifest, typical version manifest (${Math.round(fast)} docs/s)`,
    value: 1e6 / fast,
    unit: 'µs/doc',
    target: 100,
    pass: 1e6 / fast <= 100,
  });
  const full = rate(loadManifestWithPositions);
  rows.push({ name: `position-keeping path, used for errors (${Math.round(full)} docs/s)`, value: 1e6 / full, unit: 'µs/doc' });
  rows.push(await slowestManifest(loadManifest));

  const dir = mkdtempSync(join(tmpdir(), 'mg-bench-validate-'));
  try {
    cpSync(join(root, 'registry-template'), dir, { recursive: true });
    const models = 200,
      perModel = 100;
    const model = readFileSync(join(root, 'registry-template/models/fraud-detector/model.yaml'), 'utf8');
    for (let m = 0; m < models; m++) {
      const name = `model-${m}`;
      mkdirSync(join(dir, 'models', name, 'versions'), { recursive: true });
      writeFileSync(join(dir, 'models', name, 'model.yaml'), model.replace('name: fraud-detector', `name: ${name}`));
      for (let v = 1; v <= perModel; v++)
        writeFileSync(join(dir, 'models', name, 'versions', `${v}.yaml`), versionText(template, name, v, v === perModel ? 'Production' : 'Archived'));
    }
    const t = performance.now();
    const result = await validateRegistry(new WorktreeSource(dir));
    const seconds = (performance.now() - t) / 1000;
    if (!result.valid) throw new Error(`generated registry invalid: ${result.problems[0]?.message}`);
    rows.push({ name: `validate whole registry, ${models * perModel} versions`, value: seconds, unit: 's', target: 2, pass: seconds <= 2 });
    // Baseline in the same run: reading and parsing every manifest with js-yaml alone.
    const { load } = await import('js-yaml');
    const tp = performance.now();
    for (let m = 0; m < models; m++) for (let v = 1; v <= perModel; v++) load(readFileSync(join(dir, 'models', `model-${m}`, 'versions', `${v}.yaml`), 'utf8'));
    const parseOnly = (performance.now() - tp) / 1000;
    rows.push({
      name: `validate, ${models * perModel} versions`,
      value: seconds,
      unit: 's',
      baselineName: 'js-yaml parse of every manifest alone',
      baseline: parseOnly,
      target: 1.5,
      pass: seconds / parseOnly <= 1.5,
    });
    rows.push({ name: 'validate throughput (files/s)', value: result.checked / seconds, unit: 'files/s' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/**
 * Manifests at the size limit built to be slow: long runs of what the loader's scans look at
 * (blanks, commas, quotes, brackets, comments, escapes), thousands of keys in one flow mapping
 * (yaml's own duplicate check is quadratic there), thousands of problems to locate (schema errors,
 * unknown fields, tags, anchors). Each is loaded and parsed by yaml alone, in turn, in blocks;
 * the row is the shape where the loader's time is the largest multiple of yaml's (SPEC §14). The
 * baseline is yaml's `parse` without its quadratic parts (uniqueKeys, pretty errors).
 */
export async function slowestManifest(loadManifest) {
  const { parse } = await import('yaml');
  const { LOAD_LIMITS } = await import(join(root, 'dist/index.js'));
  const limit = LOAD_LIMITS.maxBytes - 64;
  const head = 'apiVersion: modelgate.dev/v1\nkind: ModelVersion\nmodel: m\nversion: 1\nstage: None\ncreatedAt: "2026-11-27T10:00:00Z"\ncreatedBy: maria\n';
  const repeat = (prefix, unit, suffix = '\n') =>
    head + prefix + unit.repeat(Math.floor((limit - head.length - prefix.length - suffix.length) / unit.length)) + suffix;
  const items = (prefix, item, suffix) => {
    let text = head + prefix;
    for (let i = 0; text.length < limit - 40; i++) text += item(i);
    return text + suffix;
  };
  const shapes = {
    'a run of blanks in a value': repeat('description: a', ' ', 'b\n'),
    'a comma, then a run of blanks': repeat('description: a,', ' ', 'b\n'),
    'a value of commas': repeat('description: a', ',a'),
    'a value of quotes': repeat('description: x', " ''"),
    'a value of brackets': repeat('description: x', ' []'),
    'a value of colons': repeat('description: a', ':a'),
    'a comment of hashes': repeat('description: a', ' #'),
    'a run of "- " in a value': repeat('description: a', '- '),
    'a double-quoted value of escapes': repeat('description: "', '\\"', '"\n'),
    'one flow mapping of 20,000 keys': items('parameters: {', (i) => `k${i}: 1, `, 'z: 1}\n'),
    'one flow mapping with a duplicate key last': items('parameters: {', (i) => `k${i}: 1, `, 'k1: 1}\n'),
    'a block mapping of 20,000 keys': items('parameters:\n', (i) => `  k${i}: 1\n`, '  z: 1\n'),
    'a schema error on every metric': items('metrics: {', (i) => `a${i}: x, `, 'z: x}\n'),
    'an unknown field on every line': items('', (i) => `u${i}: 1\n`, ''),
    'a tag on every item': items('x: [', () => '!t a, ', 'a]\n'),
    'an anchor on every item': items('x: [', (i) => `&a${i} a, `, 'a]\n'),
  };
  const file = 'models/m/versions/1.yaml';
  const yamlParse = (text) => parse(text, { uniqueKeys: false, prettyErrors: false, logLevel: 'silent' });
  // CPU time of blocks of calls, not wall time of single ones: on a loaded machine a single run of
  // a few milliseconds is preempted often enough to swing the ratio by 2× either way.
  const cpu = (f, times) => {
    const t = process.cpuUsage();
    for (let k = 0; k < times; k++) f();
    const used = process.cpuUsage(t);
    return (used.user + used.system) / 1000 / times;
  };
  const loadIt = (text) => () => loadManifest(text, file, 'ModelVersion');
  const parseIt = (text) => () => {
    try {
      yamlParse(text);
    } catch {}
  };
  let worst;
  for (const [shape, text] of Object.entries(shapes)) {
    // Blocks of at least about 40 ms; best of four blocks of each, in turn (two for the shapes that take seconds).
    const first = performance.now();
    loadIt(text)();
    const times = Math.max(1, Math.ceil(40 / (performance.now() - first)));
    let load = Infinity;
    let yaml = Infinity;
    for (let run = 0; run < (times > 1 ? 4 : 2); run++) {
      load = Math.min(load, cpu(loadIt(text), times));
      yaml = Math.min(yaml, cpu(parseIt(text), times));
    }
    if (!worst || load / yaml > worst.load / worst.yaml) worst = { shape, load, yaml };
  }
  return {
    name: `loadManifest of a ${Math.round(limit / 1024)} KiB manifest built to be slow, CPU time (worst of ${Object.keys(shapes).length} shapes: ${worst.shape})`,
    value: worst.load,
    unit: 'ms',
    baselineName: 'yaml parse of the same text',
    baseline: worst.yaml,
    target: 3,
  };
}
