import { isAlias, isMap, isScalar, LineCounter, parseDocument, visit, type Document } from 'yaml';
import { ExitCode, ModelgateError } from '../errors.js';
import type { Lineage, Signature, SignatureEntry, SignatureParam, SignatureType } from '../manifest/types.js';

/**
 * An MLflow model folder's `MLmodel`, read for the manifest (SPEC v2 §2): the framework from the
 * flavors, the run that logged it, the signature in MLflow's own shape and the environment files
 * the python_function flavor names. Pure: the caller reads the files.
 */
export interface MLflowModel {
  /** Flavor names in file order, e.g. python_function, sklearn. */
  flavors: string[];
  framework?: { name: string; version?: string };
  run?: { id: string; system: 'mlflow' };
  signature?: Signature;
  /** python_function's python_version. */
  python?: string;
  /** Environment files named by python_function's `env`, relative to the folder. */
  environment: Array<{ path: string; kind: EnvironmentKind }>;
}

export type EnvironmentKind = 'conda' | 'virtualenv' | 'pip' | 'constraints';

/** Above this MLmodel is not read: MLflow writes a few KiB, a wide signature some hundreds. */
export const MLMODEL_MAX_BYTES = 1024 * 1024;

/** MLflow's DataType names (mlflow.types.schema.DataType). */
const DATA_TYPES = ['boolean', 'integer', 'long', 'float', 'double', 'string', 'binary', 'datetime'];
/** Composite column types (Array, Object, Map, AnyType, SparkMLVector). */
const COMPOSITE_TYPES = ['array', 'object', 'map', 'any', 'sparkml_vector'];
const COLUMN_TYPES = [...DATA_TYPES, ...COMPOSITE_TYPES];
const NUMPY_DTYPE = /^[a-z][a-z0-9]*(\[[a-z]+\])?$/;

/**
 * MLflow flavors whose library has another name on PyPI; every other flavor is named as is
 * (xgboost, lightgbm, transformers, langchain …), so `--framework` and MLmodel agree.
 */
const FLAVOR_PACKAGES: Record<string, string> = {
  sklearn: 'scikit-learn',
  pytorch: 'torch',
  spark: 'pyspark',
  paddle: 'paddlepaddle',
  sentence_transformers: 'sentence-transformers',
  llama_index: 'llama-index',
  h2o: 'h2o',
};

/** The version key a flavor writes, where it is not `<flavor>_version`. */
const FLAVOR_VERSION_KEYS: Record<string, string> = { xgboost: 'xgb_version', lightgbm: 'lgb_version', spark: 'pyspark_version' };

const ENV_KINDS: Record<string, EnvironmentKind> = { conda: 'conda', virtualenv: 'virtualenv' };

const fail = (message: string, data: Record<string, unknown> = {}) => new ModelgateError('E_MLMODEL', message, ExitCode.content, data);

/** MLmodel parsed as MLflow reads it, with the line of each node for messages and findings. */
export interface MLmodelDocument {
  /** The document as plain data (a mapping). */
  value: Record<string, unknown>;
  /** Line (1-based) and character offset of the node at `path`, or of the document when absent. */
  at: (path: readonly (string | number)[]) => { line: number; offset: number };
  /** A scalar's text as written (`3.10` stays "3.10"); undefined for anything else. */
  textOf: (path: readonly string[]) => string | undefined;
}

/**
 * Parses MLmodel text. MLflow writes it with PyYAML's safe dumper: plain YAML, no tags or
 * aliases (both refused here), the signature's lists as JSON strings inside it. Every refusal
 * is an E_MLMODEL naming the file and line (`data.line`).
 */
export function parseMLmodelDocument(text: string, file = 'MLmodel'): MLmodelDocument {
  const lineCounter = new LineCounter();
  let doc: Document.Parsed;
  try {
    doc = parseDocument(text, { version: '1.2', schema: 'core', merge: false, uniqueKeys: true, strict: true, prettyErrors: false, lineCounter });
  } catch (e) {
    throw fail(`${file}: not readable as YAML (${(e as Error).message.split('\n')[0]})`, { file, line: 1 });
  }
  const lineAt = (offset: number | undefined) => (offset === undefined ? 1 : lineCounter.linePos(offset).line);
  const err = doc.errors[0];
  if (err) throw fail(`${file}:${lineAt(err.pos[0])}: not valid YAML: ${err.message.split('\n')[0]}`, { file, line: lineAt(err.pos[0]) });
  visit(doc, (_key, node) => {
    if (isAlias(node))
      throw fail(`${file}:${lineAt(node.range?.[0])}: YAML aliases are not read in MLmodel (MLflow never writes them)`, {
        file,
        line: lineAt(node.range?.[0]),
      });
    if (node && typeof node === 'object' && 'tag' in node && (node as { tag?: string }).tag) {
      const at = lineAt((node as { range?: [number] }).range?.[0]);
      throw fail(`${file}:${at}: YAML tags (${(node as { tag?: string }).tag}) are not read in MLmodel (MLflow never writes them)`, { file, line: at });
    }
  });
  if (!isMap(doc.contents)) throw fail(`${file}:1: expected a mapping with flavors (an MLflow MLmodel file)`, { file, line: 1 });
  const contents = doc.contents;
  return {
    value: doc.toJS({ maxAliasCount: 0 }) as Record<string, unknown>,
    at: (path) => {
      const node = doc.getIn(path, true) as { range?: [number] } | undefined;
      const offset = node?.range?.[0] ?? contents.range?.[0] ?? 0;
      return { line: lineAt(offset), offset };
    },
    // Versions as written: PyYAML quotes a version that would read as a number, but a hand-made
    // `python_version: 3.10` must stay "3.10", not become 3.1.
    textOf: (path) => {
      const node = doc.getIn(path, true);
      if (!isScalar(node) || node.value === null || node.value === undefined) return undefined;
      return typeof node.value === 'string' ? node.value : typeof node.source === 'string' ? node.source : scalarText(node.value);
    },
  };
}

/** Reads MLmodel text for the manifest (parsed by parseMLmodelDocument). */
export function readMLmodel(text: string, file = 'MLmodel'): MLflowModel {
  const { value, at, textOf } = parseMLmodelDocument(text, file);
  const lineOf = (path: string[]) => at(path).line;

  const flavorsValue = value.flavors;
  if (flavorsValue !== undefined && flavorsValue !== null && (typeof flavorsValue !== 'object' || Array.isArray(flavorsValue))) {
    throw fail(`${file}:${lineOf(['flavors'])}: flavors must be a mapping of flavor name → settings`, { file, line: lineOf(['flavors']) });
  }
  const flavors = (flavorsValue ?? {}) as Record<string, unknown>;
  const names = Object.keys(flavors);
  const settings = (name: string) => (flavors[name] && typeof flavors[name] === 'object' ? (flavors[name] as Record<string, unknown>) : {});
  const pyfunc = settings('python_function');

  const out: MLflowModel = { flavors: names, environment: [] };
  const framework = frameworkOf(names, pyfunc, (flavor, key) => textOf(['flavors', flavor, key]), textOf(['mlflow_version']));
  if (framework) out.framework = framework;

  if (value.run_id !== undefined && value.run_id !== null) {
    const id = textOf(['run_id']);
    if (!id || id.length > 256) throw fail(`${file}:${lineOf(['run_id'])}: run_id must be a text of 1 to 256 characters`, { file, line: lineOf(['run_id']) });
    out.run = { id, system: 'mlflow' };
  }

  const python = textOf(['flavors', 'python_function', 'python_version']);
  if (python) out.python = python;

  const env = pyfunc.env;
  const envEntries: Array<[string, unknown]> =
    typeof env === 'string' ? [['conda', env]] : env && typeof env === 'object' && !Array.isArray(env) ? Object.entries(env) : [];
  for (const [kind, path] of envEntries) {
    const line = lineOf(['flavors', 'python_function', 'env']);
    if (!ENV_KINDS[kind]) throw fail(`${file}:${line}: flavors.python_function.env.${kind} is not an MLflow environment (conda, virtualenv)`, { file, line });
    if (typeof path !== 'string' || !isFolderPath(path))
      throw fail(`${file}:${line}: flavors.python_function.env.${kind} must be a relative path inside the model folder`, { file, line });
    out.environment.push({ path, kind: ENV_KINDS[kind] });
  }

  if (value.signature !== undefined && value.signature !== null) {
    const line = (part?: string) => lineOf(part ? ['signature', part] : ['signature']);
    const signature = parseSignature(value.signature, (part, message) => fail(`${file}:${line(part)}: ${message}`, { file, line: line(part) }));
    if (signature) out.signature = signature;
  }
  return out;
}

/**
 * The framework of an MLflow model: the flavor python_function loads (`loader_module:
 * mlflow.sklearn`), else the first other flavor, with the version that flavor records; a custom
 * python_function model (`mlflow.pyfunc.model`) is `mlflow` at the MLflow version.
 */
function frameworkOf(
  flavors: string[],
  pyfunc: Record<string, unknown>,
  text: (flavor: string, key: string) => string | undefined,
  mlflowVersion: string | undefined,
): { name: string; version?: string } | undefined {
  const loader = typeof pyfunc.loader_module === 'string' ? pyfunc.loader_module : undefined;
  const loaded = loader?.startsWith('mlflow.') ? loader.slice('mlflow.'.length) : undefined;
  const flavor = (loaded && flavors.includes(loaded) ? loaded : undefined) ?? flavors.find((f) => f !== 'python_function');
  if (!flavor) {
    if (loader === 'mlflow.pyfunc.model' || flavors.includes('python_function'))
      return { name: 'mlflow', ...(mlflowVersion ? { version: mlflowVersion } : {}) };
    return undefined;
  }
  const version = text(flavor, FLAVOR_VERSION_KEYS[flavor] ?? `${flavor}_version`);
  return { name: FLAVOR_PACKAGES[flavor] ?? flavor, ...(version ? { version } : {}) };
}

/**
 * The environment files of a model folder with `paths` (its files, relative): those MLmodel
 * names, then requirements.txt and constraints.txt beside MLmodel, as MLflow writes them. A
 * file MLmodel names that the folder lacks is skipped (MLflow 1.x models name conda.yaml only).
 */
function environmentFiles(model: MLflowModel, paths: ReadonlySet<string>): Array<{ path: string; kind: EnvironmentKind }> {
  const out = model.environment.filter((e) => paths.has(e.path));
  for (const [path, kind] of [
    ['requirements.txt', 'pip'],
    ['constraints.txt', 'constraints'],
  ] as const) {
    if (paths.has(path) && !out.some((e) => e.path === path)) out.push({ path, kind });
  }
  return out;
}

/** An MLflow folder as a registration reads it: its MLmodel, the environment files and requirements.txt it holds. */
export interface MLflowFolder {
  model: MLflowModel;
  environment: Array<{ path: string; kind: EnvironmentKind }>;
  requirements?: string;
}

/**
 * The MLmodel of a folder holding `paths`, read for the manifest (register, serve's upload and
 * MLflow registrations, `import mlflow` all read it here): `size` is checked before `text` is
 * asked for, `name` is how messages name the file.
 */
export async function readMLflowFolder(name: string, size: number, text: () => Promise<string>, paths: ReadonlySet<string>): Promise<MLflowFolder> {
  if (size > MLMODEL_MAX_BYTES) {
    throw new ModelgateError(
      'E_MLMODEL',
      `${name}: ${size} bytes, more than the ${MLMODEL_MAX_BYTES} an MLmodel may have; this is not the file MLflow writes`,
      ExitCode.content,
      { file: name },
    );
  }
  const model = readMLmodel(await text(), name);
  return { model, environment: environmentFiles(model, paths), ...(paths.has('requirements.txt') ? { requirements: 'requirements.txt' } : {}) };
}

/**
 * The environment lineage of an MLflow folder: its Python version, requirements.txt and the
 * environment files with their digests in the artifact (`digests`: path → sha256; a file without
 * one is left out). What `given` says wins; undefined when nothing is known.
 */
export function mlflowEnvironment(
  folder: MLflowFolder | undefined,
  digests: ReadonlyMap<string, string>,
  given: Lineage['environment'] = {},
): Lineage['environment'] | undefined {
  const files = (folder?.environment ?? []).filter((e) => digests.has(e.path)).map((e) => ({ path: e.path, sha256: digests.get(e.path)!, kind: e.kind }));
  const environment = {
    ...(folder?.model.python ? { python: folder.model.python } : {}),
    ...(folder?.requirements ? { requirements: folder.requirements } : {}),
    ...given,
    ...(files.length ? { files } : {}),
  };
  return Object.keys(environment).length ? environment : undefined;
}

function isFolderPath(path: string): boolean {
  return path.length > 0 && path.length <= 1024 && !path.startsWith('/') && !path.split('/').some((s) => s === '' || s === '.' || s === '..');
}

type Refuse = (part: string | undefined, message: string) => ModelgateError;

/**
 * A signature in MLflow's shape, checked as MLflow reads it (mlflow.types.schema): `value` is
 * MLmodel's `signature` mapping or a `--signature` file's object; each of inputs, outputs and
 * params is MLflow's JSON text or the decoded list. Returns the lists decoded, `name: null`,
 * `shape: null` left out (MLflow reads them as absent) and a param's `dtype` spelled `type`.
 * Undefined when all three are empty.
 */
export function parseSignature(value: unknown, refuse: Refuse): Signature | undefined {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw refuse(undefined, 'signature must be a mapping with inputs, outputs and params');
  const out: Signature = {};
  for (const [key, raw] of Object.entries(value)) {
    if (key !== 'inputs' && key !== 'outputs' && key !== 'params')
      throw refuse(undefined, `signature.${key} is not part of an MLflow signature (inputs, outputs, params)`);
    if (raw === null || raw === undefined || raw === '') continue;
    let list: unknown = raw;
    if (typeof raw === 'string') {
      try {
        list = JSON.parse(raw);
      } catch (e) {
        throw refuse(key, `signature.${key} is not valid JSON (${(e as Error).message})`);
      }
    }
    if (list === null) continue;
    if (!Array.isArray(list)) throw refuse(key, `signature.${key} must be a list (MLflow's JSON-serialized schema), got ${describe(list)}`);
    const at = (message: string) => refuse(key, message);
    if (key === 'params') out.params = list.map((p, i) => paramSpec(p, `signature.params[${i}]`, at));
    else out[key] = schema(list, `signature.${key}`, at);
  }
  if (out.params) {
    const names = out.params.map((p) => p.name);
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice !== undefined) throw refuse('params', `signature.params: parameter "${twice}" is given twice`);
  }
  return out.inputs || out.outputs || out.params ? out : undefined;
}

type At = (message: string) => ModelgateError;

/** An MLflow Schema: all columns or all tensors, all named or all unnamed (MLflow refuses the rest). */
function schema(list: unknown[], path: string, at: At): SignatureEntry[] {
  if (list.length === 0) throw at(`${path} is an empty list; MLflow writes no schema rather than an empty one`);
  const entries = list.map((e, i) => entry(e, `${path}[${i}]`, at));
  const tensors = entries.filter((e) => e.type === 'tensor').length;
  if (tensors && tensors !== entries.length) throw at(`${path} mixes tensors and columns; an MLflow schema is one or the other`);
  const named = entries.filter((e) => e.name !== undefined).length;
  if (named && named !== entries.length) throw at(`${path} mixes named and unnamed entries; name all of them or none`);
  if (!named && tensors > 1) throw at(`${path} has several unnamed tensors; MLflow needs a name for each`);
  if (!named && entries.some((e) => e.required === false)) throw at(`${path} has unnamed optional columns; MLflow needs optional columns named`);
  return entries;
}

function entry(raw: unknown, path: string, at: At): SignatureEntry {
  const e = object(raw, path, at);
  const name = e.name === null || e.name === undefined ? undefined : e.name;
  if (name !== undefined && (typeof name !== 'string' || name.length === 0 || name.length > 256))
    throw at(`${path}.name must be a text of 1 to 256 characters, got ${describe(name)}`);
  if (e.type === 'tensor') {
    onlyKeys(e, ['name', 'type', 'tensor-spec'], path, at);
    const spec = object(e['tensor-spec'], `${path}.tensor-spec`, at);
    onlyKeys(spec, ['dtype', 'shape'], `${path}.tensor-spec`, at);
    if (typeof spec.dtype !== 'string' || !NUMPY_DTYPE.test(spec.dtype))
      throw at(`${path}.tensor-spec.dtype must be a numpy dtype name such as float32, got ${describe(spec.dtype)}`);
    if (!Array.isArray(spec.shape) || spec.shape.length > 32 || !spec.shape.every((d) => Number.isInteger(d) && (d as number) >= -1)) {
      throw at(`${path}.tensor-spec.shape must be a list of dimensions (integers, -1 for a variable one), got ${describe(spec.shape)}`);
    }
    return { ...(name !== undefined ? { name } : {}), type: 'tensor', 'tensor-spec': { dtype: spec.dtype, shape: spec.shape as number[] } };
  }
  onlyKeys(e, ['name', 'type', 'required', 'items', 'properties', 'values'], path, at);
  const required = optionalBoolean(e.required, `${path}.required`, at);
  return { ...(name !== undefined ? { name } : {}), ...columnType(e, path, at, 'column'), ...(required !== undefined ? { required } : {}) };
}

/** A column's, element's, value's or property's type, recursively (Array, Object, Map …). */
function columnType(e: Record<string, unknown>, path: string, at: At, what: 'column' | 'nested'): SignatureType {
  const type = e.type;
  if (typeof type !== 'string' || !COLUMN_TYPES.includes(type)) {
    const allowed = what === 'column' ? [...COLUMN_TYPES, 'tensor'] : COLUMN_TYPES;
    throw at(`${path}.type ${describe(type)} is not an MLflow type; expected one of ${allowed.join(', ')}`);
  }
  const has = (k: string) => e[k] !== undefined && e[k] !== null;
  for (const k of ['items', 'properties', 'values']) {
    const owner = { items: 'array', properties: 'object', values: 'map' }[k];
    if (has(k) && type !== owner) throw at(`${path}.${k} belongs to type ${owner}, not ${type}`);
  }
  if (type === 'array') {
    const items = object(e.items, `${path}.items`, at);
    onlyKeys(items, ['type', 'items', 'properties', 'values'], `${path}.items`, at);
    return { type, items: columnType(items, `${path}.items`, at, 'nested') };
  }
  if (type === 'map') {
    const values = object(e.values, `${path}.values`, at);
    onlyKeys(values, ['type', 'items', 'properties', 'values'], `${path}.values`, at);
    return { type, values: columnType(values, `${path}.values`, at, 'nested') };
  }
  if (type === 'object') return { type, properties: properties(e.properties, `${path}.properties`, at) };
  return { type };
}

function properties(raw: unknown, path: string, at: At): NonNullable<SignatureType['properties']> {
  const props = object(raw, path, at);
  if (Object.keys(props).length === 0) throw at(`${path} is empty; an MLflow object has at least one property`);
  const out: NonNullable<SignatureType['properties']> = {};
  for (const [name, spec] of Object.entries(props)) {
    const p = object(spec, `${path}.${name}`, at);
    onlyKeys(p, ['type', 'required', 'items', 'properties', 'values'], `${path}.${name}`, at);
    const required = optionalBoolean(p.required, `${path}.${name}.required`, at);
    out[name] = { ...columnType(p, `${path}.${name}`, at, 'nested'), ...(required !== undefined ? { required } : {}) };
  }
  return out;
}

function paramSpec(raw: unknown, path: string, at: At): SignatureParam {
  const p = object(raw, path, at);
  onlyKeys(p, ['name', 'type', 'dtype', 'default', 'shape', 'properties'], path, at);
  if (typeof p.name !== 'string' || p.name.length === 0 || p.name.length > 256)
    throw at(`${path}.name must be a text of 1 to 256 characters, got ${describe(p.name)}`);
  const type = p.type ?? p.dtype;
  const allowed = [...DATA_TYPES.filter((t) => t !== 'binary'), 'object'];
  if (typeof type !== 'string' || !allowed.includes(type))
    throw at(`${path}.type ${describe(type)} is not an MLflow parameter type; expected one of ${allowed.join(', ')}`);
  if (!('default' in p)) throw at(`${path} has no default; an MLflow parameter always has one`);
  const shape = p.shape === null || p.shape === undefined ? undefined : p.shape;
  if (shape !== undefined && !(Array.isArray(shape) && shape.length === 1 && shape[0] === -1))
    throw at(`${path}.shape must be [-1] (a list parameter) or absent, got ${describe(shape)}`);
  if (p.properties !== undefined && type !== 'object') throw at(`${path}.properties belongs to type object, not ${type}`);
  return {
    name: p.name,
    type,
    default: p.default,
    ...(shape ? { shape: [-1] as [-1] } : {}),
    ...(type === 'object' ? { properties: properties(p.properties, `${path}.properties`, at) } : {}),
  };
}

function object(raw: unknown, path: string, at: At): Record<string, unknown> {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw at(`${path} must be a mapping, got ${describe(raw)}`);
  return raw as Record<string, unknown>;
}

function onlyKeys(e: Record<string, unknown>, keys: string[], path: string, at: At): void {
  const extra = Object.keys(e).find((k) => !keys.includes(k));
  if (extra !== undefined) throw at(`${path} has an unknown field "${extra}" (allowed: ${keys.join(', ')})`);
}

function optionalBoolean(v: unknown, path: string, at: At): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw at(`${path} must be true or false, got ${describe(v)}`);
  return v;
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}…` : v);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return scalarText(v) ?? typeof v;
}

/** The text of a number, boolean or bigint scalar; undefined for anything else. */
function scalarText(v: unknown): string | undefined {
  return typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' ? String(v) : undefined;
}
