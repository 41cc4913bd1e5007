/**
 * Which pickle globals the gate accepts (SPEC v2 §8). Pickle imports whatever a GLOBAL names and
 * calls it, so a deny list is always one module short (picklescan's `pkgutil.resolve_name`,
 * `importlib.import_module` advisories): this is an allow list. An entry is `module.name` (exact)
 * or `module.*` (any plain name in that module or its submodules). A `*` entry never matches a
 * dotted or dunder name: protocol 4 resolves `numpy` + `prod.a` by walking attributes, the
 * trick of protectai/modelscan#85, so such names must be listed exactly.
 */
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
  'numpy.random._pickle.__randomstate_ctor',
  'numpy.random._pickle.__bit_generator_ctor',
  'numpy.random._pickle.__generator_ctor',
  'numpy.random._mt19937.MT19937',
  'numpy.random._pcg64.PCG64',
  // joblib's array wrappers (the raw bytes that follow are read by the scanner, never executed)
  'joblib.numpy_pickle.NumpyArrayWrapper',
  'joblib.numpy_pickle.NDArrayWrapper',
  // scikit-learn estimators, built with copyreg / __newobj__ and a state dict
  'sklearn.*',
  // torch tensors, storages and parameters as torch.save writes them
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_tensor_v3',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  'torch._utils._rebuild_qtensor',
  'torch._utils._rebuild_sparse_tensor',
  'torch._utils._rebuild_device_tensor_from_numpy',
  'torch._tensor._rebuild_from_type_v2',
  'torch.nn.parameter.Parameter',
  'torch.Size',
  'torch.device',
  'torch.float32',
  'torch.float64',
  'torch.float16',
  'torch.bfloat16',
  'torch.int64',
  'torch.int32',
  'torch.int16',
  'torch.int8',
  'torch.uint8',
  'torch.bool',
  'torch.FloatStorage',
  'torch.DoubleStorage',
  'torch.HalfStorage',
  'torch.BFloat16Storage',
  'torch.LongStorage',
  'torch.IntStorage',
  'torch.ShortStorage',
  'torch.CharStorage',
  'torch.ByteStorage',
  'torch.BoolStorage',
  'torch.storage.UntypedStorage',
  // plain containers and the copyreg helpers every protocol-2 object uses
  'collections.OrderedDict',
  'collections.defaultdict',
  'builtins.set',
  'builtins.frozenset',
  'builtins.slice',
  'builtins.complex',
  'builtins.bytearray',
  'builtins.object',
  'copyreg._reconstructor',
  'copyreg.__newobj__',
  '_codecs.encode',
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
