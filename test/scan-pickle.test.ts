import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PickleScanner, scanPickleBytes } from '../src/scan/pickle.js';
import { bufferSource, scanArtifactFile } from '../src/scan/artifact.js';

const dir = mkdtempSync(join(tmpdir(), 'mg-scan-'));

/** Runs a python3 snippet that writes fixture files into `dir`. */
function py(code: string): void {
  execFileSync('python3', ['-c', code], { cwd: dir });
}

py(String.raw`
import pickle, io, zipfile, zlib, struct, os, subprocess, collections
class Rebuild:
    """Pickles like numpy's ndarray: a reduce through numpy.core.multiarray._reconstruct."""
    def __reduce__(self):
        return (Fake('numpy.core.multiarray', '_reconstruct'), (Fake('numpy', 'ndarray'), (0,), b'b'), (1, (3,), None, False, b'\x00'*24))
class Fake:
    def __init__(self, m, n): self.m, self.n = m, n
class P(pickle.Pickler):
    def reducer_override(self, obj):
        if isinstance(obj, Fake):
            return NotImplemented
        return NotImplemented
# Emit globals by name without importing numpy: pickle writes GLOBAL for classes found by module+qualname.
import types, sys
def fake_global(mod, name):
    parts = mod.split('.')
    for i in range(1, len(parts) + 1):
        n = '.'.join(parts[:i])
        if n not in sys.modules:
            sys.modules[n] = types.ModuleType(n)
            if i > 1: setattr(sys.modules['.'.join(parts[:i-1])], parts[i-1], sys.modules[n])
    m = sys.modules[mod]
    f = type(name, (), {})
    f.__module__ = mod; f.__qualname__ = name
    setattr(m, name, f)
    return f
recon = fake_global('numpy.core.multiarray', '_reconstruct')
ndarray = fake_global('numpy', 'ndarray')
Est = fake_global('sklearn.linear_model._base', 'LinearRegression')
class Arr:
    def __reduce__(self): return (recon, (ndarray, (0,), b'b'), (1, (3,), None, False, b'\x00'*24))
def est():
    e = Est.__new__(Est); e.__dict__.update({'coef_': Arr(), 'fit_intercept': True, 'n_features_in_': 3}); return e
class Evil:
    def __init__(self, f, a): self.f, self.a = f, a
    def __reduce__(self): return (self.f, self.a)
for proto in range(0, 6):
    open(f'benign-p{proto}.pkl', 'wb').write(pickle.dumps({'model': est(), 'meta': collections.OrderedDict(a=1)}, protocol=proto))
    open(f'system-p{proto}.pkl', 'wb').write(pickle.dumps([est(), Evil(os.system, ('id',))], protocol=proto))
    open(f'eval-p{proto}.pkl', 'wb').write(pickle.dumps(Evil(eval, ('1+1',)), protocol=proto))
    open(f'popen-p{proto}.pkl', 'wb').write(pickle.dumps({'x': Evil(subprocess.Popen, (['id'],))}, protocol=proto))
# torch-style zip: archive/data.pkl plus raw tensor members
def torch_zip(path, payload):
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as z:
        z.writestr('archive/data.pkl', payload)
        z.writestr('archive/data/0', os.urandom(4096))
        z.writestr('archive/version', '3\n')
torch_zip('benign.pt', pickle.dumps(collections.OrderedDict(w=est()), protocol=2))
torch_zip('evil.pt', pickle.dumps(collections.OrderedDict(w=Evil(os.system, ('id',))), protocol=2))
with zipfile.ZipFile('evil-deflated.pt', 'w', zipfile.ZIP_DEFLATED) as z:
    z.writestr('archive/data.pkl', pickle.dumps(Evil(os.system, ('id',)), protocol=4))
# joblib-like: NumpyArrayWrapper BUILD followed by the raw array bytes (which here contain opcode-like junk)
NAW = fake_global('joblib.numpy_pickle', 'NumpyArrayWrapper')
dtype = fake_global('numpy', 'dtype')
class DT:
    def __reduce__(self): return (dtype, ('f8', False, True), (3, '<', None, None, None, -1, -1, 0))
def wrapper(shape):
    w = NAW.__new__(NAW); w.__dict__.update({'subclass': ndarray, 'shape': shape, 'order': 'C', 'dtype': DT(), 'allow_mmap': True, 'numpy_array_alignment_bytes': 16}); return w
def joblib_file(path, tail_obj):
    f = io.BytesIO()
    class JP(pickle.Pickler):
        pass
    p = pickle.Pickler(f, protocol=4)
    # joblib writes the wrapper, commits the frame, then the padded raw bytes, then continues the same pickle
    body = pickle.dumps([wrapper((4, 2)), tail_obj], protocol=4)
    # split after the wrapper's BUILD: rebuild by hand with two pickles is not joblib; emulate with opcodes
    open(path, 'wb').write(body)
raw = b'c' + b'os\nsystem\n' * 6 + b'\x00' * 4
def jl(path, tail):
    w = pickle.dumps(wrapper((4, 2)), protocol=4)  # ends ... BUILD STOP
    assert w.endswith(b'b.')
    head = w[:-1]
    pos = len(b'') + len(head) + 1
    pad = 16 - (pos % 16)
    tail_p = pickle.dumps(tail, protocol=4)
    # continue: the wrapper stays on the stack; APPEND pattern: EMPTY_LIST first
    data = b'\x80\x04]' + head[2:] + bytes([pad]) + b'\xff' * pad + raw[:64].ljust(64, b'\x00') + b'a' + tail_p[2:-1] + b'a.'
    open(path, 'wb').write(data)
jl('benign.joblib', 1)
jl('evil.joblib', Evil(os.system, ('id',)))
open('benign.joblib.z', 'wb').write(zlib.compress(open('benign.joblib', 'rb').read()))
open('evil.joblib.z', 'wb').write(zlib.compress(open('evil.joblib', 'rb').read()))
`);

const bytes = (f: string) => readFileSync(join(dir, f));
/** The scanner fed `size` bytes at a time, as a stream of chunks reaches it. */
function chunked(b: Buffer, size: number) {
  const s = new PickleScanner();
  for (let i = 0; i < b.length; i += size) s.push(b.subarray(i, i + size));
  return s.end();
}

describe('pickle scanner', () => {
  for (const proto of [0, 1, 2, 3, 4, 5]) {
    it(`protocol ${proto}: benign sklearn/numpy-like pickle passes, os.system / eval / Popen are refused`, () => {
      expect(scanPickleBytes(bytes(`benign-p${proto}.pkl`))).toEqual([]);
      const sys = scanPickleBytes(bytes(`system-p${proto}.pkl`), { file: 'm.pkl' });
      const pos = proto >= 3 ? 'posix.system' : 'posix.system';
      expect(sys.map((f) => f.global)).toEqual([pos]);
      expect(sys[0]!.file).toBe('m.pkl');
      // the offset points at the opcode that names the global
      const b = bytes(`system-p${proto}.pkl`);
      expect([0x63, 0x93, 0x8c, 0x58, 0x56].includes(b[sys[0]!.offset]!) || b[sys[0]!.offset] === 0x93).toBe(true);
      expect(scanPickleBytes(bytes(`eval-p${proto}.pkl`)).map((f) => f.global)).toEqual(['builtins.eval']);
      expect(scanPickleBytes(bytes(`popen-p${proto}.pkl`)).map((f) => f.global)).toEqual(['subprocess.Popen']);
    });
  }

  it('the streaming variant finds the same at any chunk size', () => {
    const b = bytes('system-p4.pkl');
    const whole = scanPickleBytes(b);
    for (const size of [1, 3, 7, 64]) expect(chunked(b, size)).toEqual(whole);
  });

  it('memo confusion (picklescan#14): PUT and MEMOIZE mixed, STACK_GLOBAL through BINGET', () => {
    const s = (t: string) => Buffer.concat([Buffer.from([0x8c, t.length]), Buffer.from(t)]);
    const p = Buffer.concat([
      Buffer.from([0x80, 4]),
      s('os'),
      Buffer.from([0x71, 0]), // BINPUT 0
      s('system'),
      Buffer.from([0x71, 1]),
      s('torch._utils'),
      Buffer.from([0x94]), // MEMOIZE → index len(memo) = 2
      s('_rebuild_tensor_v2'),
      Buffer.from([0x94]),
      Buffer.from([0x30, 0x30, 0x30, 0x30]), // POP ×4
      Buffer.from([0x68, 0, 0x68, 1, 0x93]), // BINGET 0, BINGET 1, STACK_GLOBAL
      s('id'),
      Buffer.from([0x85, 0x52, 0x2e]),
    ]);
    const f = scanPickleBytes(p);
    expect(f.map((x) => x.global)).toEqual(['os.system']);
    expect(f[0]!.offset).toBe(p.indexOf(Buffer.from([0x68, 0, 0x68, 1, 0x93])) + 4);
  });

  it('a GET of a memo slot never PUT (picklescan#52) stops the loader there: refused as no readable pickle, never a pass', () => {
    const p = Buffer.from([0x80, 4, 0x68, 9, 0x68, 8, 0x93, 0x29, 0x52, 0x2e]);
    expect(scanPickleBytes(p).map((f) => [f.kind, f.offset])).toEqual([['unscannable', 2]]);
  });

  it('a dotted name under an allowed module (modelscan#85, numpy prod.a) is refused', () => {
    const p = Buffer.from('\x80\x04cnumpy\nprod.a\n.', 'latin1');
    expect(scanPickleBytes(p).map((f) => f.global)).toEqual(['numpy.prod.a']);
    expect(scanPickleBytes(Buffer.from('csklearn.base\n__builtins__\n.', 'latin1')).length).toBe(1);
  });

  it('protocol-0 __builtin__ names map to builtins; allowGlobals extends the list; EXT and truncation fail closed', () => {
    expect(scanPickleBytes(Buffer.from('c__builtin__\nset\n(lR.', 'latin1'))).toEqual([]);
    expect(scanPickleBytes(Buffer.from('cmypkg.mod\nThing\n.', 'latin1'))).toHaveLength(1);
    expect(scanPickleBytes(Buffer.from('cmypkg.mod\nThing\n.', 'latin1'), { allowGlobals: ['mypkg.mod.Thing'] })).toEqual([]);
    expect(scanPickleBytes(Buffer.from([0x80, 2, 0x82, 1, 0x2e]))[0]!.kind).toBe('unresolved-global');
    expect(scanPickleBytes(bytes('benign-p4.pkl').subarray(0, 40))[0]!.kind).toBe('unscannable');
    expect(scanPickleBytes(Buffer.concat([bytes('benign-p2.pkl'), Buffer.from('cos\nsystem\n.')])).map((f) => f.global)).toEqual(['os.system']);
  });

  it('torch-style zip: the data.pkl member is scanned, stored or deflated, with the member in the report', async () => {
    expect(await scanArtifactFile('model.pt', bufferSource(bytes('benign.pt')))).toEqual([]);
    const evil = await scanArtifactFile('model.pt', bufferSource(bytes('evil.pt')));
    expect(evil.map((f) => [f.file, f.global])).toEqual([['model.pt!archive/data.pkl', 'posix.system']]);
    expect((await scanArtifactFile('model.pt', bufferSource(bytes('evil-deflated.pt')))).map((f) => f.global)).toEqual(['posix.system']);
  });

  it('a zip is read by its central directory, as torch and zipfile read it, whatever its local headers say', async () => {
    const b = Buffer.from(bytes('evil.pt'));
    // rename the local header of data.pkl so a local-header reader would skip it
    const at = b.indexOf('archive/data.pkl');
    b.write('archive/data.bin', at, 'latin1');
    const f = await scanArtifactFile('model.pt', bufferSource(b));
    expect(f.map((x) => [x.file, x.global])).toEqual([['model.pt!archive/data.pkl', 'posix.system']]);
  });

  it('bytes no loader reads as a pickle are no finding: 3,000 pseudo-random files of 4 KiB (tensor data, weights)', async () => {
    let x = 0x2545f491;
    const next = () => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), x >>> 0);
    const refused: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const b = Buffer.alloc(4096);
      for (let j = 0; j < b.length; j += 4) b.writeUInt32LE(next(), j);
      const f = await scanArtifactFile(`w${i}`, bufferSource(b));
      if (f.length) refused.push(`${i}: ${f[0]!.message}`);
    }
    expect(refused).toEqual([]);
  });

  it('a format declared onnx or safetensors whose bytes are a pickle is refused, naming the file', async () => {
    for (const format of ['onnx', 'safetensors']) {
      const f = await scanArtifactFile('model.onnx', bufferSource(bytes('benign-p4.pkl')), { format });
      expect(f.map((x) => [x.file, x.kind])).toEqual([['model.onnx', 'format']]);
    }
    expect(await scanArtifactFile('model.onnx', bufferSource(Buffer.from([0x08, 0x07, 0x12, 0x04])), { format: 'onnx' })).toEqual([]);
  });
});

/** Real files from Debian's torch, joblib, scikit-learn and NumPy (/usr/bin/python3). */
const real = mkdtempSync(join(tmpdir(), 'mg-scan-real-'));
execFileSync(
  '/usr/bin/python3',
  [
    '-c',
    String.raw`
import os, pickle, warnings, collections, numpy as np, torch, joblib
warnings.filterwarnings('ignore')
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.datasets import make_classification
X, y = make_classification(n_samples=60, n_features=5, random_state=0)
rf = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
m = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU())
torch.save({'model': m.state_dict(), 'epoch': 1}, 'ok-checkpoint.pt')
torch.save(m.state_dict(), 'ok-legacy.pt', _use_new_zipfile_serialization=False)
for c in ['zlib', 'gzip', 'bz2', 'lzma', 'xz']:
    joblib.dump(rf, 'ok-rf-' + c + '.joblib', compress=(c, 3))
joblib.dump(rf, 'ok-rf.joblib')
joblib.dump(TfidfVectorizer().fit(['red apple', 'green pear']), 'ok-tfidf.joblib')
joblib.dump({'u': np.array(['a', 'bc'], dtype='U2'), 'rec': np.zeros(3, dtype=[('a', '<f4'), ('b', '<i8')]), 'o': np.array([1, None], dtype=object)}, 'ok-arrays.joblib')
np.save('ok-objects.npy', np.array([1, {'a': 2}], dtype=object), allow_pickle=True)
class Evil:
    def __reduce__(self): return (os.system, ('id',))
joblib.dump({'a': np.arange(4), 'o': np.array([Evil()], dtype=object)}, 'bad-object-array.joblib')
joblib.dump({'a': np.arange(4), 'e': Evil()}, 'bad-xz.joblib', compress=('xz', 3))
torch.save({'w': torch.zeros(2), 'e': Evil()}, 'bad.pt')
np.save('bad.npy', np.array([Evil()], dtype=object), allow_pickle=True)
`,
  ],
  { cwd: real },
);

describe('pickle scanner on files torch.save, joblib.dump and numpy.save wrote', () => {
  const scan = async (f: string, format?: string) => scanArtifactFile(f, bufferSource(readFileSync(join(real, f))), { format });

  it('passes state dicts, checkpoints (zip with data descriptors, legacy), estimators with every compressor, dtypes, object arrays', async () => {
    const files = ['ok-checkpoint.pt', 'ok-legacy.pt', 'ok-rf.joblib', 'ok-tfidf.joblib', 'ok-arrays.joblib', 'ok-objects.npy'];
    for (const c of ['zlib', 'gzip', 'bz2', 'lzma', 'xz']) files.push(`ok-rf-${c}.joblib`);
    for (const f of files) expect([f, await scan(f, f.endsWith('.pt') ? 'pt' : f.endsWith('.npy') ? 'other' : 'joblib')]).toEqual([f, []]);
  });

  it('refuses os.system in a nested object-array pickle, an xz joblib, a torch zip and a .npy, with file, offset and global', async () => {
    for (const [f, file] of [
      ['bad-object-array.joblib', 'bad-object-array.joblib'],
      ['bad-xz.joblib', 'bad-xz.joblib (xz-decompressed)'],
      ['bad.pt', 'bad.pt!bad/data.pkl'],
      ['bad.npy', 'bad.npy'],
    ] as const) {
      const found = await scan(f);
      expect(found.map((x) => [x.file, x.global])).toEqual([[file, 'posix.system']]);
      expect(found[0]!.offset).toBeGreaterThan(0);
    }
  });

  it('modelgate scan: exit 0 on a folder of real files, 1 with findings naming file, offset and global', () => {
    const run = (args: string[]) => {
      try {
        return { code: 0, out: execFileSync(process.execPath, [join(import.meta.dirname, '../dist/cli.js'), 'scan', ...args, '--json'], { encoding: 'utf8' }) };
      } catch (e) {
        return { code: (e as { status: number }).status, out: (e as { stdout: string }).stdout };
      }
    };
    const okDir = mkdtempSync(join(tmpdir(), 'mg-scan-ok-'));
    for (const f of ['ok-checkpoint.pt', 'ok-rf-bz2.joblib']) execFileSync('cp', [join(real, f), join(okDir, f)]);
    const ok = run([okDir]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out)).toEqual({ findings: [], scanned: ['ok-checkpoint.pt', 'ok-rf-bz2.joblib'] });
    const bad = run([join(real, 'bad.pt'), '--format', 'pt']);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.out).findings).toEqual([
      expect.objectContaining({ file: 'bad.pt!bad/data.pkl', global: 'posix.system', offset: expect.any(Number) }),
    ]);
    expect(run([join(real, 'bad.pt'), '--allow', 'posix.system']).code).toBe(0);
  });
});
