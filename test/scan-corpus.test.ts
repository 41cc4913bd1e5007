// The pickle-scan corpus (issue 20, SPEC §14 "Pickle scanning"), judged by the built CLI's
// `modelgate scan <path...> [--format <fmt>] --json` and by the gate.
//
// Malicious half: test/fixtures/pickle-corpus/malicious/, committed, with provenance.json naming
// each file's source (picklescan's, modelscan's and fickling's samples and advisories, and one or
// more files for every bypass class of the issue) and how verify_malicious.py showed it runs under
// its real loader. Every one must be refused (exit 1) with a finding naming the file, an offset
// and the global.
//
// Benign half: written here by test/fixtures/pickle-corpus/generate_benign.py with Debian's
// PyTorch, joblib, scikit-learn and NumPy (scripts/pickle-corpus.sh install): state dicts,
// checkpoints, estimators, pipelines and vectorizers at several protocols and with every joblib
// compressor. Every one must pass (exit 0, no finding).
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { Decision } from '../src/gate/types.js';
import { cli, git, makeRegistry } from './helpers/artifacts.js';

const ROOT = resolve(import.meta.dirname, '..');
const CORPUS = join(ROOT, 'test/fixtures/pickle-corpus');
const MALICIOUS = join(CORPUS, 'malicious');
const CLI = join(ROOT, 'dist/cli.js');

interface ProvenanceEntry {
  file: string;
  class: string;
  loader: string;
  declared_format?: string;
  verified?: { executed: boolean; globals: string[] };
}
interface Finding {
  file: string;
  offset: number;
  global?: string;
  reason?: string;
}
interface ScanResult {
  code: number;
  stdout: string;
  stderr: string;
  json?: { findings: Finding[]; scanned: string[] };
}

const provenance: ProvenanceEntry[] = JSON.parse(readFileSync(join(CORPUS, 'provenance.json'), 'utf8')).files;

/** `modelgate scan <args> --json` through dist/cli.js, as a user runs it. */
function scan(args: string[]): Promise<ScanResult> {
  return new Promise((done) => {
    execFile(process.execPath, [CLI, 'scan', ...args, '--json'], { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      let json: ScanResult['json'];
      try {
        json = JSON.parse(stdout);
      } catch {}
      done({ code, stdout, stderr, json });
    });
  });
}

const GLOBAL = /^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+$/;

describe('the malicious corpus', () => {
  it('lists every committed file in provenance.json, each with its source and its loader', () => {
    const onDisk: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const p = join(dir, name);
        if (statSync(p).isDirectory()) walk(p);
        else onDisk.push(p.slice(MALICIOUS.length + 1));
      }
    };
    walk(MALICIOUS);
    expect(onDisk.sort()).toEqual(provenance.map((e) => e.file).sort());
    for (const e of provenance) {
      expect(e.loader, e.file).toMatch(/^(pickle\.load\*?|torch\.load|joblib\.load|numpy\.load|zipfile\+pickle\.load)$/);
      expect(e.verified, `${e.file}: run verify_malicious.py --write`).toBeDefined();
    }
  });

  it.concurrent.each(provenance.map((e) => [e.file, e] as const))(
    'refuses %s with the file, an offset and the global',
    async (file, entry) => {
      const args = [join(MALICIOUS, file), ...(entry.declared_format ? ['--format', entry.declared_format] : [])];
      const r = await scan(args);
      expect(r.code, r.stdout + r.stderr).toBe(1);
      const findings = r.json!.findings;
      expect(findings.length).toBeGreaterThan(0);
      for (const f of findings) {
        expect(f.file.startsWith(basename(file)), `${f.file} names ${basename(file)}`).toBe(true);
        expect(Number.isInteger(f.offset) && f.offset >= 0, JSON.stringify(f)).toBe(true);
      }
      const named = findings.filter((f) => typeof f.global === 'string' && GLOBAL.test(f.global));
      expect(named.length, JSON.stringify(findings)).toBeGreaterThan(0);
      // The loader resolved these globals when verify_malicious.py ran the payload: one of them is
      // refused. (A sample that did not run may fail before the loader reaches its global.)
      const resolved = entry.verified?.executed ? entry.verified.globals : [];
      if (resolved.length)
        expect(
          named.some((f) => resolved.includes(f.global!)),
          `${JSON.stringify(named)} vs ${resolved.join(', ')}`,
        ).toBe(true);
    },
    120_000,
  );

  it('scans a directory artifact whatever its files are called, naming each file', async () => {
    const names = readdirSync(join(MALICIOUS, 'bypass/names'));
    const r = await scan([join(MALICIOUS, 'bypass/names')]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    for (const name of names) expect(r.json!.findings.some((f) => f.file.startsWith(name) && f.global)).toBe(true);
  }, 120_000);

  it('refuses the declared-format samples without --format too: the bytes decide', async () => {
    for (const e of provenance.filter((x) => x.declared_format)) {
      const r = await scan([join(MALICIOUS, e.file)]);
      expect(r.code, e.file).toBe(1);
    }
  }, 120_000);
});

let benign: string;
let benignFiles: Array<{ file: string; library: string; loader: string; format: string }>;

/** The benign corpus, written once per test run under its TMPDIR by Debian's libraries. */
function generateBenign() {
  benign ??= (() => {
    const dir = mkdtempSync(join(tmpdir(), 'mg-benign-corpus-'));
    execFileSync('bash', [join(ROOT, 'scripts/pickle-corpus.sh'), 'generate', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
    benignFiles = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')).files;
    return dir;
  })();
}

describe('the benign corpus, written by torch.save, joblib.dump, pickle.dump and numpy.save', () => {
  beforeAll(generateBenign, 300_000);

  it('covers every library, both torch formats, several protocols and every joblib compressor', () => {
    const calls = benignFiles.map((f) => f.file).join('\n');
    for (const lib of ['torch', 'joblib+sklearn', 'pickle+sklearn', 'numpy']) expect(benignFiles.some((f) => f.library === lib)).toBe(true);
    for (const want of ['-zip-p2.pt', '-legacy-p2.pt', '-p5.pt', '-zlib.joblib', '-gzip.joblib', '-bz2.joblib', '-lzma.joblib', '-xz.joblib', '-lz4.joblib'])
      expect(calls).toContain(want);
  });

  it('passes every file in one scan of the folder: exit 0, no finding, every file scanned', async () => {
    const r = await scan([benign]);
    expect(r.json?.findings, r.stdout + r.stderr).toEqual([]);
    expect(r.code).toBe(0);
    for (const f of benignFiles.filter((x) => x.format !== 'npy' && x.format !== 'npz'))
      expect(
        r.json!.scanned.some((s) => s.includes(f.file)),
        f.file,
      ).toBe(true);
  }, 300_000);

  it('passes each file on its own with its declared format', async () => {
    const failed: string[] = [];
    const queue = [...benignFiles];
    const worker = async () => {
      for (let f = queue.shift(); f; f = queue.shift()) {
        const fmt = ['pt', 'joblib', 'pickle'].includes(f.format) ? ['--format', f.format] : [];
        const r = await scan([join(benign, f.file), ...fmt]);
        if (r.code !== 0) failed.push(`${f.file}: exit ${r.code} ${r.stdout}${r.stderr}`);
      }
    };
    await Promise.all([worker(), worker(), worker()]);
    expect(failed).toEqual([]);
  }, 600_000);
});

/**
 * Through the gate: a version is registered at None (the policy asks for the scan from Staging
 * on), then a branch moves it to Staging and `modelgate check` judges the branch. The scan check
 * must fail on each bypass class and pass on real checkpoints.
 */
describe('the gate refuses one sample of each bypass class on promotion', () => {
  let reg: string;
  let n = 0;

  beforeAll(async () => {
    generateBenign();
    const store = mkdtempSync(join(tmpdir(), 'mg-corpus-store-'));
    reg = makeRegistry({ uri: pathToFileURL(store).href });
    mkdirSync(join(reg, 'policies'), { recursive: true });
    writeFileSync(
      join(reg, 'policies/promotion.yaml'),
      stringify({
        apiVersion: 'modelgate.dev/v1',
        kind: 'PromotionPolicy',
        rules: [
          { name: 'register', to: 'None' },
          { name: 'to-staging', to: 'Staging', from: ['None'], scan: 'pickle' },
          { name: 'new-models', paths: ['models/*/model.yaml'] },
        ],
      }),
    );
    git(reg, 'add', '-A');
    git(reg, 'commit', '-qm', 'policy: scan from Staging on');
  }, 300_000);

  /** Registers `path` on main as a new model, promotes it on a branch; returns the scan check of `check`. */
  async function promote(path: string, format?: string) {
    const model = `m${++n}`;
    git(reg, 'checkout', '-q', 'main');
    const r = await cli(reg, ['register', model, path, ...(format ? ['--format', format] : [])]);
    expect(r.code, r.stderr).toBe(0);
    git(reg, 'checkout', '-q', '-b', `promote-${model}`);
    const file = join(reg, `models/${model}/versions/1.yaml`);
    writeFileSync(file, readFileSync(file, 'utf8').replace(/^stage: None$/m, 'stage: Staging'));
    expect((await cli(reg, ['--quiet', 'sync'])).code).toBe(0);
    git(reg, 'add', '-A');
    git(reg, 'commit', '-qm', `promote ${model}`);
    const c = await cli(reg, ['check', '--base', 'main', '--head', `promote-${model}`, '--no-approvals', '--json']);
    git(reg, 'checkout', '-q', 'main');
    const checks = (c.json as Decision).transitions.flatMap((t) => t.rules.flatMap((rule) => rule.results));
    return { code: c.code, scanCheck: checks.find((x) => x.check === 'scan (pickle)')!, out: c.stdout + c.stderr };
  }

  const refused = async (path: string, format?: string) => {
    const { code, scanCheck, out } = await promote(path, format);
    expect(code, out).toBe(1);
    expect(scanCheck.status, out).toBe('fail');
    expect(scanCheck.findings?.length, out).toBeGreaterThan(0);
    expect(
      scanCheck.findings!.every((f) => Number.isInteger(f.offset)),
      out,
    ).toBe(true);
    expect(
      scanCheck.findings!.some((f) => f.global && GLOBAL.test(f.global)),
      out,
    ).toBe(true);
  };

  it('an os.system pickle registered as --format onnx', () => refused(join(MALICIOUS, 'bypass/format-onnx/model.onnx'), 'onnx'), 120_000);
  it(
    'an os.system pickle registered as --format safetensors',
    () => refused(join(MALICIOUS, 'bypass/format-safetensors/model.safetensors'), 'safetensors'),
    120_000,
  );
  it('a directory of pickles named model.dat, checkpoint.pth.tar, model.joblib.gz, model.sav', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'mg-corpus-dir-')), 'model');
    cpSync(join(MALICIOUS, 'bypass/names'), dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), '{"dim": 4}\n');
    await refused(dir);
  }, 120_000);
  it(
    'sklearn.utils._testing.check_output (subprocess.check_output re-exported)',
    () => refused(join(MALICIOUS, 'bypass/sklearn-reexport/check_output.pkl'), 'pickle'),
    120_000,
  );
  it(
    'a joblib file whose FRAME hides os.system from a scanner skipping array bytes',
    () => refused(join(MALICIOUS, 'bypass/joblib/frame.joblib'), 'joblib'),
    120_000,
  );
  it('a joblib U1 array', () => refused(join(MALICIOUS, 'bypass/joblib/u1.joblib'), 'joblib'), 120_000);
  it('a joblib object array (nested pickle)', () => refused(join(MALICIOUS, 'bypass/joblib/object-array.joblib'), 'joblib'), 120_000);
  it(
    'a zip whose last end-of-central-directory record (the one torch.load reads) differs from the first',
    () => refused(join(MALICIOUS, 'bypass/zip/two-eocd.pt'), 'pt'),
    120_000,
  );
  it("PyTorch's legacy tar format", () => refused(join(MALICIOUS, 'bypass/torch-legacy/tar-pickle.pt'), 'pt'), 120_000);
  it('a NumPy object array holding os.system', () => refused(join(MALICIOUS, 'bypass/numpy/object-array.npy'), 'other'), 120_000);

  it('passes real checkpoints and estimators: torch.save zip and legacy, joblib.dump with lzma', async () => {
    for (const [file, format] of [
      ['torch-adam_checkpoint-zip-p2.pt', 'pt'],
      ['torch-state_dict-legacy-p2.pt', 'pt'],
      ['joblib-random_forest-lzma.joblib', 'joblib'],
      ['joblib-tfidf_vectorizer-p4.joblib', 'joblib'],
    ]) {
      const { code, scanCheck, out } = await promote(join(benign, file!), format);
      expect(scanCheck.status, `${file}: ${out}`).toBe('pass');
      expect(code, `${file}: ${out}`).toBe(0);
    }
  }, 300_000);
});
