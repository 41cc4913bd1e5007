/**
 * What MLflow's loaders do with the files an `MLmodel` names (SPEC v3 §14), read from MLflow
 * 3.18's own loaders (mlflow.pyfunc.load_model, pyfunc/model.py, sklearn, pytorch, lightgbm,
 * xgboost, statsmodels, onnx, utils/model_utils.py):
 *
 * - `python_function.loader_module` is imported by name: anything but a loader MLflow ships runs
 *   code of the artifact's choosing (with a `code` directory, a module of the artifact itself);
 * - a flavor's `code` directory is put first on `sys.path`: every module it holds must be allowed
 *   by the policy (`scan.allowGlobals: [<module>.*]`);
 * - a model from code (`model_code_path`, `model_code`) is a Python file executed on load;
 * - `python_model` (cloudpickle, optionally gzip/bzip2/lzma-compressed), sklearn's `pickled_model`
 *   and python_function's `model_path` (pickle or cloudpickle), statsmodels' and a scikit-learn
 *   API lightgbm's `data` are unpickled: each is scanned strictly as a pickle, whatever its bytes;
 *   skops' trusted types are globals the model names, checked against the allow list;
 * - pytorch's `pickle_module_info.txt` names the module `torch.load` unpickles with: only
 *   `mlflow.pytorch.pickle_module`; xgboost's and lightgbm's `model_class` is imported and called;
 * - an `onnx` or xgboost `data` file is no pickle: one that is, is refused;
 * - every path is joined to the model folder (`os.path.join`): an absolute path, `..`, a symbolic
 *   link or a file the artifact lacks is refused.
 *
 * Pure over an `ArtifactTree`: the caller lists the files and reads the small ones.
 */
import { ModelgateError } from '../errors.js';
import { MLMODEL_MAX_BYTES, parseMLmodelDocument, type MLmodelDocument } from '../lineage/mlflow.js';
import { DEFAULT_ALLOWED_GLOBALS, globalMatcher } from './allowlist.js';
import type { PickleFinding } from './pickle.js';

/** The files of an artifact folder, by their paths inside it ('/'-separated). */
export interface ArtifactTree {
  /** Regular files and their sizes. */
  files: ReadonlyMap<string, number>;
  /** Paths that are symbolic links (a local folder's; the store holds none). */
  links: ReadonlySet<string>;
  /** The bytes of a file of `files`. */
  read(path: string): Promise<Buffer>;
}

/** How a loader an MLmodel names reads one file. */
export type FileLoad = { as: 'pickle'; compression?: 'gzip' | 'bz2' | 'lzma'; by: string } | { as: 'no-pickle'; by: string } | { as: 'zip'; by: string };

export interface MLmodelPlan {
  /** What the MLmodel files themselves make a loader do that the scan refuses. */
  findings: PickleFinding[];
  /** Files a loader reads in a known way, by path. */
  loads: Map<string, FileLoad>;
}

/** The python_function loaders MLflow 3.18 ships (every `loader_module=` its flavors write, and pyfunc's own). */
const MLFLOW_LOADER_MODULES: ReadonlySet<string> = new Set([
  ...[
    'catboost',
    'diffusers',
    'dspy',
    'h2o',
    'johnsnowlabs',
    'keras',
    'langchain',
    'lightgbm',
    'llama_index',
    'onnx',
    'openai',
    'paddle',
    'pmdarima',
    'prompt.promptlab_model',
    'prophet',
    'pytorch',
    'sentence_transformers',
    'shap',
    'sklearn',
    'spacy',
    'spark',
    'statsmodels',
    'tensorflow',
    'transformers',
    'xgboost',
  ].map((m) => `mlflow.${m}`),
  'mlflow.pyfunc.model',
  ...['chat_agent', 'chat_model', 'code_model', 'responses_agent'].map((m) => `mlflow.pyfunc.loaders.${m}`),
]);

/** pyfunc loaders that unpickle `python_model` (`_load_context_model_and_signature`). */
const PYTHON_MODEL_LOADERS = new Set([
  'mlflow.pyfunc.model',
  ...['chat_agent', 'chat_model', 'code_model', 'responses_agent'].map((m) => `mlflow.pyfunc.loaders.${m}`),
]);

/** The one pickle module MLflow's pytorch flavor writes (cloudpickle, re-exported). */
const TORCH_PICKLE_MODULE = 'mlflow.pytorch.pickle_module';

/** Classes xgboost's and lightgbm's loaders import from `model_class` and call. */
const MODEL_CLASSES: Record<string, readonly string[]> = {
  xgboost: [
    'xgboost.core.Booster',
    ...['XGBModel', 'XGBClassifier', 'XGBRegressor', 'XGBRanker', 'XGBRFClassifier', 'XGBRFRegressor'].map((c) => `xgboost.sklearn.${c}`),
  ],
  lightgbm: ['lightgbm.basic.Booster', ...['LGBMModel', 'LGBMClassifier', 'LGBMRegressor', 'LGBMRanker'].map((c) => `lightgbm.sklearn.${c}`)],
};

/** python_model_compression → the compressor MLflow opens the file with (`_COMPRESSION_INFO`). */
const PYTHON_MODEL_COMPRESSION: Record<string, 'gzip' | 'bz2' | 'lzma'> = { gzip: 'gzip', bzip2: 'bz2', lzma: 'lzma' };

/** Module files Python imports from a `sys.path` folder: the module name is the part before the first dot. */
const MODULE_FILE = /^([A-Za-z_][A-Za-z0-9_]*)\.(?:py|pyc|pyw|so|pyd)$|^([A-Za-z_][A-Za-z0-9_]*)\.[^.]+\.(?:so|pyd)$/;

/** Plans the MLflow part of a scan: every file named `MLmodel` in the artifact, as MLflow reads it. */
export async function planMLmodels(tree: ArtifactTree, allowGlobals: readonly string[]): Promise<MLmodelPlan> {
  const plan: MLmodelPlan = { findings: [], loads: new Map() };
  for (const [path, size] of tree.files) {
    if (path !== 'MLmodel' && !path.endsWith('/MLmodel')) continue;
    if (size > MLMODEL_MAX_BYTES) {
      plan.findings.push({ file: path, offset: 0, line: 1, kind: 'mlmodel', message: `${size} bytes, more than the ${MLMODEL_MAX_BYTES} an MLmodel may have` });
      continue;
    }
    let doc: MLmodelDocument;
    try {
      doc = parseMLmodelDocument((await tree.read(path)).toString('utf8'), path);
    } catch (e) {
      if (!(e instanceof ModelgateError)) throw e;
      const line = typeof e.data?.line === 'number' ? e.data.line : 1;
      plan.findings.push({
        file: path,
        offset: 0,
        line,
        kind: 'mlmodel',
        message: `not readable as an MLmodel: ${e.message.replace(/^[^:]*:(?:\d+:)? /, '')}`,
      });
      continue;
    }
    await new MLmodelReading(tree, path, doc, allowGlobals, plan).read();
  }
  // a file two flavors name (pytorch's model_data and python_function's data) is reported once
  const seen = new Set<string>();
  plan.findings = plan.findings.filter((f) => {
    const key = `${f.file}\0${f.line}\0${f.message}`;
    return !seen.has(key) && Boolean(seen.add(key));
  });
  return plan;
}

type Conf = Record<string, unknown>;

class MLmodelReading {
  /** The model folder: MLflow joins every path to it. */
  private readonly dir: string;
  private readonly allowed: (module: string, name: string) => boolean;

  constructor(
    private readonly tree: ArtifactTree,
    private readonly file: string,
    private readonly doc: MLmodelDocument,
    private readonly allowGlobals: readonly string[],
    private readonly plan: MLmodelPlan,
  ) {
    this.dir = file === 'MLmodel' ? '' : file.slice(0, -'/MLmodel'.length);
    this.allowed = globalMatcher([...DEFAULT_ALLOWED_GLOBALS, ...allowGlobals]);
  }

  private refuse(key: readonly (string | number)[], message: string): void {
    const { line, offset } = this.doc.at(key);
    this.plan.findings.push({ file: this.file, offset, line, kind: 'mlmodel', message: `${key.join('.')}: ${message}` });
  }

  private load(path: string, how: FileLoad): void {
    const known = this.plan.loads.get(path);
    // A file two flavors read differently is read as the more dangerous of the two: a pickle.
    if (!known || how.as === 'pickle') this.plan.loads.set(path, how);
  }

  async read(): Promise<void> {
    const flavors = this.doc.value.flavors;
    if (!isConf(flavors)) return;
    for (const [name, conf] of Object.entries(flavors)) {
      if (!isConf(conf)) continue;
      const key = (...k: string[]) => ['flavors', name, ...k];
      for (const code of ['model_code_path', 'model_code'])
        if (conf[code] !== undefined && conf[code] !== null)
          this.refuse(key(code), 'a model from code: MLflow executes this Python file when it loads the model');
      if (conf.code) await this.codeDirectory(conf.code, key('code'));
      if (name === 'python_function') await this.pyfunc(conf, key);
      else if (name === 'sklearn') this.sklearnFile(conf.pickled_model, conf, key('pickled_model'), key);
      else if (name === 'pytorch') await this.torchData(conf.model_data, key('model_data'));
      else if (name === 'lightgbm' || name === 'xgboost') this.boosting(name, conf, key);
      else if (name === 'statsmodels') {
        const data = this.path(conf.data ?? 'model.statsmodels', key('data'), 'file');
        if (data) this.load(data, { as: 'pickle', by: `${this.file} (statsmodels data)` });
      } else if (name === 'onnx') {
        const data = this.path(conf.data, key('data'), 'file');
        if (data) this.load(data, { as: 'no-pickle', by: `${this.file} names it as the onnx model` });
      }
    }
  }

  private async pyfunc(conf: Conf, key: (...k: string[]) => string[]): Promise<void> {
    const loader = conf.loader_module;
    if (loader !== undefined && (typeof loader !== 'string' || !MLFLOW_LOADER_MODULES.has(loader)))
      this.refuse(key('loader_module'), `${show(loader)} is not a loader MLflow ships: mlflow.pyfunc.load_model imports it, running its code`);
    const data = conf.data === undefined ? undefined : this.path(conf.data, key('data'), 'any');
    for (const [kind, env] of Object.entries(typeof conf.env === 'string' ? { conda: conf.env } : isConf(conf.env) ? conf.env : {}))
      this.path(env, typeof conf.env === 'string' ? key('env') : key('env', kind), 'optional');
    if (isConf(conf.artifacts))
      for (const [name, artifact] of Object.entries(conf.artifacts)) if (isConf(artifact)) this.path(artifact.path, key('artifacts', name, 'path'), 'any');
    if (conf.pickle_module_name !== undefined && conf.pickle_module_name !== TORCH_PICKLE_MODULE)
      this.refuse(key('pickle_module_name'), `${show(conf.pickle_module_name)}: only ${TORCH_PICKLE_MODULE} is a pickle module MLflow writes`);
    if (typeof loader === 'string' && PYTHON_MODEL_LOADERS.has(loader) && conf.model_code_path === undefined) {
      const file = this.path(conf.python_model, key('python_model'), 'file');
      const compression = conf.python_model_compression;
      if (file)
        this.load(file, {
          as: 'pickle',
          by: `${this.file} (python_function python_model)`,
          ...(typeof compression === 'string' && PYTHON_MODEL_COMPRESSION[compression] ? { compression: PYTHON_MODEL_COMPRESSION[compression] } : {}),
        });
    }
    if (loader === 'mlflow.sklearn') {
      // sklearn's _load_pyfunc: `data` when it is a file, else `model_path` inside it (or the folder)
      if (data !== undefined && this.tree.files.has(data)) this.sklearnFile(conf.data, this.sklearnConf(), key('data'), (...k) => ['flavors', 'sklearn', ...k]);
      else if (conf.model_path !== undefined) {
        const at = data === undefined ? conf.model_path : typeof conf.model_path === 'string' ? `${String(conf.data)}/${conf.model_path}` : conf.model_path;
        this.sklearnFile(at, this.sklearnConf(), key('model_path'), (...k) => ['flavors', 'sklearn', ...k]);
      }
    } else if (loader === 'mlflow.pytorch' && conf.data !== undefined) await this.torchData(conf.data, key('data'));
    // statsmodels' _load_pyfunc unpickles `data` itself, whatever its own flavor names
    else if (loader === 'mlflow.statsmodels' && data !== undefined && this.tree.files.has(data))
      this.load(data, { as: 'pickle', by: `${this.file} (python_function data, statsmodels)` });
  }

  private sklearnConf(): Conf {
    const flavors = this.doc.value.flavors as Conf;
    return isConf(flavors.sklearn) ? flavors.sklearn : {};
  }

  /** A file sklearn's `_load_model_from_local_file` reads with `conf`'s serialization format (lightgbm's default is cloudpickle). */
  private sklearnFile(raw: unknown, conf: Conf, pathKey: string[], confKey: (...k: string[]) => string[], fallback = 'pickle'): void {
    const file = this.path(raw, pathKey, 'file');
    const format = conf.serialization_format ?? fallback;
    if (format === 'pickle' || format === 'cloudpickle') {
      if (file) this.load(file, { as: 'pickle', by: `${this.file} (${pathKey.slice(1).join('.')}, ${format})` });
    } else if (format === 'skops') {
      if (file) this.load(file, { as: 'zip', by: `${this.file} (${pathKey.slice(1).join('.')}, skops)` });
      const trusted = conf.skops_trusted_types;
      if (trusted !== undefined && trusted !== null) {
        if (!Array.isArray(trusted)) this.refuse(confKey('skops_trusted_types'), 'must be a list of type names');
        else
          trusted.forEach((t, i) => {
            const dot = typeof t === 'string' ? t.lastIndexOf('.') : -1;
            if (dot <= 0 || !this.allowed((t as string).slice(0, dot), (t as string).slice(dot + 1)))
              this.refuse(
                [...confKey('skops_trusted_types'), i],
                `${show(t)}: skops imports and builds the types the model trusts, and this one is not an allowed global`,
              );
          });
      }
    } else this.refuse(confKey('serialization_format'), `${show(format)} is not a serialization format MLflow loads (pickle, cloudpickle, skops)`);
  }

  /** pytorch's `_load_model`: a folder's model.pth is unpickled with the module pickle_module_info.txt names. */
  private async torchData(raw: unknown, key: string[]): Promise<void> {
    const data = this.path(raw, key, 'any');
    if (data === undefined || this.tree.files.has(data) || !this.tree.files.has(`${data}/model.pth`)) return;
    const info = `${data}/pickle_module_info.txt`;
    const size = this.tree.files.get(info);
    if (size === undefined) {
      this.refuse(key, `${info} is missing: torch.load of ${data}/model.pth needs the pickle module it names`);
      return;
    }
    const name = size <= 256 ? (await this.tree.read(info)).toString('utf8') : undefined;
    if (name !== TORCH_PICKLE_MODULE)
      this.plan.findings.push({
        file: info,
        offset: 0,
        line: 1,
        kind: 'mlmodel',
        message: `names the pickle module ${show(name ?? `(${size} bytes)`)}: mlflow.pytorch imports it to unpickle ${data}/model.pth; only ${TORCH_PICKLE_MODULE} is allowed`,
      });
  }

  private boosting(flavor: 'xgboost' | 'lightgbm', conf: Conf, key: (...k: string[]) => string[]): void {
    const cls = conf.model_class ?? `${flavor}.${flavor === 'xgboost' ? 'core' : 'basic'}.Booster`;
    if (typeof cls !== 'string' || !MODEL_CLASSES[flavor]!.includes(cls)) {
      this.refuse(key('model_class'), `${show(cls)} is not a ${flavor} model class: MLflow imports it and calls it`);
      return;
    }
    if (flavor === 'lightgbm' && !cls.endsWith('.Booster')) this.sklearnFile(conf.data, conf, key('data'), key, 'cloudpickle');
    else {
      const data = this.path(conf.data, key('data'), 'file');
      if (data) this.load(data, { as: 'no-pickle', by: `${this.file} names it as the ${flavor} model` });
    }
  }

  /**
   * A flavor's code directory: MLflow prepends it to sys.path, so every module it holds can be
   * imported by a name the model (or a pickle) gives. Allowed when the policy allows each module.
   */
  private async codeDirectory(raw: unknown, key: string[]): Promise<void> {
    const dir = this.path(raw, key, 'dir');
    if (dir === undefined) return;
    const modules = new Set<string>();
    for (const path of this.tree.files.keys()) {
      if (!path.startsWith(`${dir}/`)) continue;
      const rest = path.slice(dir.length + 1);
      const slash = rest.indexOf('/');
      if (slash > 0) modules.add(rest.slice(0, slash));
      else {
        const m = MODULE_FILE.exec(rest);
        if (m) modules.add((m[1] ?? m[2])!);
      }
    }
    const refused = [...modules].filter((m) => !this.allowGlobals.includes(`${m}.*`)).sort();
    if (refused.length)
      this.refuse(
        key,
        `code directory ${dir} goes first on sys.path when MLflow loads the model, and its modules run on import (${refused.join(', ')}); allow them with the policy's scan.allowGlobals (${refused.map((m) => `${m}.*`).join(', ')})`,
      );
  }

  /**
   * The artifact path `os.path.join(<model folder>, raw)` names, or undefined (with a finding)
   * when it escapes the artifact, passes a symbolic link or names nothing there. `optional`: a
   * path that may be absent (MLflow 1.x's environment files), still refused when it escapes.
   */
  private path(raw: unknown, key: readonly (string | number)[], want: 'file' | 'dir' | 'any' | 'optional'): string | undefined {
    if (typeof raw !== 'string' || raw === '') {
      if (want !== 'optional' || raw !== undefined) this.refuse(key, `${show(raw)} is not a path inside the model folder`);
      return undefined;
    }
    if (raw.startsWith('/') || raw.includes('\\') || raw.includes('\0') || /^[A-Za-z]:/.test(raw)) {
      this.refuse(key, `${show(raw)} is an absolute path: the loader reads it outside the artifact`);
      return undefined;
    }
    const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
    if (parts.includes('..')) {
      this.refuse(key, `${show(raw)} leaves the model folder (..): the loader reads outside the artifact`);
      return undefined;
    }
    const full = [...(this.dir ? this.dir.split('/') : []), ...parts];
    for (let i = 1; i <= full.length; i++) {
      if (this.tree.links.has(full.slice(0, i).join('/'))) {
        this.refuse(key, `${show(raw)} passes the symbolic link ${full.slice(0, i).join('/')}: the loader may read outside the artifact`);
        return undefined;
      }
    }
    const path = full.join('/');
    const isFile = this.tree.files.has(path);
    const isDir = !isFile && [...this.tree.files.keys()].some((f) => f.startsWith(`${path}/`));
    if (want === 'optional' && !isFile && !isDir) return undefined;
    if ((want === 'file' && !isFile) || (want === 'dir' && !isDir) || (!isFile && !isDir)) {
      this.refuse(key, `${show(raw)} names no ${want === 'dir' ? 'folder' : want === 'file' ? 'file' : 'file or folder'} of the artifact`);
      return undefined;
    }
    return path;
  }
}

function isConf(v: unknown): v is Conf {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 77)}…` : v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return v === undefined ? 'nothing' : v === null ? 'null' : Array.isArray(v) ? 'a list' : 'a mapping';
}
