/**
 * Which pickle globals the gate accepts (SPEC v3 §14). Pickle imports whatever a GLOBAL names and
 * calls it, so a deny list is always one module short (picklescan's `pkgutil.resolve_name`,
 * `importlib.import_module` advisories): this is an allow list of exact names, each safe to import
 * and to call with any arguments: classes (instantiating one runs its own `__init__` or
 * `__setstate__`), NumPy's and torch's rebuild functions, copyreg's helpers. No module wildcard:
 * `sklearn.*` would admit `sklearn.utils._testing.check_output`, which is `subprocess.check_output`.
 * A policy's `scan.allowGlobals` may still list `module.*` for its own packages; a `*` entry never
 * matches a dotted or dunder name (protocol 4 resolves `numpy` + `prod.a` by walking attributes,
 * protectai/modelscan#85).
 */
import { SKLEARN_GLOBALS, TORCH_NN_GLOBALS } from './library-globals.js';

const NUMPY_SCALARS = [
  'bool_',
  'int8',
  'int16',
  'int32',
  'int64',
  'uint8',
  'uint16',
  'uint32',
  'uint64',
  'float16',
  'float32',
  'float64',
  'longdouble',
  'complex64',
  'complex128',
  'clongdouble',
  'str_',
  'bytes_',
  'void',
  'object_',
  'datetime64',
  'timedelta64',
];

const TORCH_STORAGES = [
  'FloatStorage',
  'DoubleStorage',
  'HalfStorage',
  'BFloat16Storage',
  'LongStorage',
  'IntStorage',
  'ShortStorage',
  'CharStorage',
  'ByteStorage',
  'BoolStorage',
  'ComplexFloatStorage',
  'ComplexDoubleStorage',
  'QInt8Storage',
  'QUInt8Storage',
  'QInt32Storage',
];

const TORCH_DTYPES = [
  'float32',
  'float64',
  'float16',
  'bfloat16',
  'complex32',
  'complex64',
  'complex128',
  'int64',
  'int32',
  'int16',
  'int8',
  'uint8',
  'bool',
  'qint8',
  'quint8',
  'qint32',
];

/** The default allow list: what torch.save, joblib.dump, pickle.dump of scikit-learn models and numpy.save write. */
export const DEFAULT_ALLOWED_GLOBALS: readonly string[] = [
  // numpy arrays, scalars and dtypes (numpy 1.x `core`, numpy 2.x `_core`)
  'numpy.core.multiarray._reconstruct',
  'numpy._core.multiarray._reconstruct',
  'numpy.core.multiarray.scalar',
  'numpy._core.multiarray.scalar',
  'numpy.core.numeric._frombuffer',
  'numpy._core.numeric._frombuffer',
  'numpy.ndarray',
  'numpy.dtype',
  'numpy.ma.core._mareconstruct',
  'numpy.ma.core.MaskedArray',
  'numpy.mean',
  ...NUMPY_SCALARS.map((t) => `numpy.${t}`),
  ...['MT19937', 'PCG64', 'PCG64DXSM', 'Philox', 'SFC64'].map((g) => `numpy.random._${g.toLowerCase().replace('dxsm', '')}.${g}`),
  'numpy.random._pickle.__randomstate_ctor',
  'numpy.random._pickle.__bit_generator_ctor',
  'numpy.random._pickle.__generator_ctor',
  'numpy.random.mtrand.RandomState',
  'numpy.random._generator.Generator',
  // scipy.sparse matrices in fitted vectorizers and encoders (scipy ≥ 1.8 and older module names)
  ...['csr', 'csc', 'coo', 'lil', 'dok', 'bsr', 'dia'].flatMap((f) => [
    `scipy.sparse._${f}.${f}_matrix`,
    `scipy.sparse.${f}.${f}_matrix`,
    `scipy.sparse._${f}.${f}_array`,
  ]),
  'scipy.interpolate._bsplines.BSpline',
  // joblib's array wrapper (the array bytes that follow are read by the scanner, never executed);
  // NDArrayWrapper, of joblib < 0.10, loads another file by name: not allowed
  'joblib.numpy_pickle.NumpyArrayWrapper',
  ...SKLEARN_GLOBALS,
  ...TORCH_NN_GLOBALS,
  // torch tensors, storages and parameters as torch.save writes them
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  'torch._utils._rebuild_qtensor',
  'torch._utils._rebuild_sparse_tensor',
  'torch._utils._rebuild_sparse_csr_tensor',
  'torch._utils._rebuild_meta_tensor_no_storage',
  'torch._utils._rebuild_device_tensor_from_numpy',
  'torch.serialization._get_layout',
  'torch.nn.parameter.Parameter',
  'torch.Tensor',
  'torch.Size',
  'torch.device',
  'torch.per_tensor_affine',
  'torch.per_channel_affine',
  ...TORCH_DTYPES.map((t) => `torch.${t}`),
  ...TORCH_STORAGES.map((t) => `torch.${t}`),
  'torch.storage.UntypedStorage',
  'torch.storage.TypedStorage',
  // plain containers and the copyreg helpers every protocol-2 object uses
  'collections.OrderedDict',
  'collections.defaultdict',
  'collections.Counter',
  'collections.deque',
  'builtins.set',
  'builtins.frozenset',
  'builtins.slice',
  'builtins.range',
  'builtins.complex',
  'builtins.bytes',
  'builtins.bytearray',
  'builtins.object',
  'copyreg._reconstructor',
  'copyreg.__newobj__',
  '_codecs.encode',
  // what mlflow.pyfunc.save_model pickles beside a python_model's own class (its cached type hints)
  'mlflow.models.signature._TypeHints',
];

/** Python 2 module names that protocol 0–2 pickles use; pickle maps them (fix_imports) before importing. */
const PY2_MODULES: Record<string, string> = {
  __builtin__: 'builtins',
  copy_reg: 'copyreg',
  exceptions: 'builtins',
  commands: 'subprocess',
  cPickle: 'pickle',
  UserDict: 'collections',
  whichdb: 'dbm',
  anydbm: 'dbm',
};

/** The module pickle really imports for `module` in a stream of protocol `proto`. */
export function effectiveModule(module: string, proto: number): string {
  return proto < 3 ? (PY2_MODULES[module] ?? module) : module;
}

/** Compiles an allow list into a predicate over (module, name). */
export function globalMatcher(allow: readonly string[]): (module: string, name: string) => boolean {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const entry of allow) {
    if (entry.endsWith('.*')) prefixes.push(entry.slice(0, -2));
    else exact.add(entry);
  }
  return (module, name) => {
    if (exact.has(`${module}.${name}`)) return true;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || /^__.*__$/.test(name)) return false;
    return prefixes.some((p) => module === p || module.startsWith(`${p}.`));
  };
}
