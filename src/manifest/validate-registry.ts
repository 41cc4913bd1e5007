import { MODELS_DIR, parseManifestPath, quickStage, POLICY_FILE, REGISTRY_FILE } from '../registry/layout.js';
import type { RegistrySource } from '../registry/source.js';
import { loadManifest, locateField, type DocumentKind, type KindMap } from './load.js';
import type { ErrorCode } from '../error-codes.js';
import { sortProblems, type Problem } from './problem.js';
import { checkRegistry, type RegistryDocuments, type VersionFacts } from './semantic.js';

export interface RegistryValidation {
  valid: boolean;
  problems: Problem[];
  /** Registry files in scope (all of them, or those under `only`). */
  checked: number;
}

export interface ValidateOptions {
  /**
   * Registry-relative files or folders to report on; the other documents are still read
   * where a cross-file rule needs them (the registry config, the other versions of a model).
   * Undefined or containing '' means the whole registry.
   */
  only?: string[];
  /** Files read at once. */
  concurrency?: number;
  /**
   * Version files already known to load without a problem at their path, as the same bytes
   * they have in `source` (the work tree's catalog, keyed by blob id): taken as loaded, not
   * read again. Every rule across files still runs on them.
   */
  known?: ReadonlyMap<string, VersionFacts>;
}

const MODELS_PREFIX = `${MODELS_DIR}/`;

/** Codes about a whole model, reported when any of its files is selected. */
const MODEL_WIDE = new Set<ErrorCode>(['E_MULTIPLE_PRODUCTION', 'E_MISSING_MODEL']);

/**
 * Schema, safe-loading and cross-file checks over a registry read through `source` (the work
 * tree or a commit). Returns every problem, sorted and located (`file:line:col`).
 */
export async function validateRegistry(source: RegistrySource, options: ValidateOptions = {}): Promise<RegistryValidation> {
  const concurrency = options.concurrency ?? 64;
  const only = options.only && !options.only.includes('') ? options.only.map((p) => p.replace(/(?<!\/)\/+$/, '')) : undefined;
  const selected = (file: string) => !only || only.some((s) => file === s || file.startsWith(`${s}/`) || s.startsWith(`${file}/`));

  // With `only`, the folders of other models are not even listed: their problems would not be
  // reported, and the gate's check of a 2-file change stays flat in the registry's size.
  const tree = await listModelsTree(source, concurrency, only ? (name) => selected(`${MODELS_DIR}/${name}`) : undefined);
  const modelOf = (file: string) => {
    if (!file.startsWith(MODELS_PREFIX)) return undefined;
    const end = file.indexOf('/', MODELS_PREFIX.length);
    return file.slice(MODELS_PREFIX.length, end < 0 ? undefined : end);
  };
  // Without `only`, every model is involved (and nobody needs to ask which).
  const involvedModels = only
    ? new Set(
        tree
          .filter(selected)
          .map(modelOf)
          .filter((m): m is string => m !== undefined),
      )
    : undefined;
  const involved = (model: string | undefined) => model !== undefined && (!involvedModels || involvedModels.has(model));
  const ofInvolvedModel = (file: string) => !involvedModels || involved(modelOf(file));

  const problems: Problem[] = [];
  const texts = new Map<string, string>();
  const missing = new Set<string>();
  const loadAndReport = <K extends DocumentKind>(text: string, file: string, kind: K): KindMap[K] | undefined => {
    const loaded = loadManifest(text, file, kind);
    if (selected(file)) problems.push(...loaded.problems);
    return loaded.value;
  };
  const load = async <K extends DocumentKind>(file: string, kind: K): Promise<KindMap[K] | undefined> => {
    const text = await source.readFile(file);
    if (text === undefined) {
      missing.add(file);
      return undefined;
    }
    return loadAndReport(text, file, kind);
  };

  const config = await load(REGISTRY_FILE, 'Registry');
  if (missing.has(REGISTRY_FILE) && selected(REGISTRY_FILE)) {
    problems.push({
      file: REGISTRY_FILE,
      code: 'E_MISSING_FILE',
      message: `${REGISTRY_FILE} not found in ${source.label}; every registry has one (kind: Registry)`,
    });
  }
  if (selected(POLICY_FILE)) await load(POLICY_FILE, 'PromotionPolicy');

  // Every document below is loaded at its file, or is a known one (which loaded at its path).
  const documents: RegistryDocuments = { config, models: [], versions: [], files: tree, stages: [], loaded: true };
  const known = options.known;
  const manifests = tree.filter((f) => {
    // A known file is a version manifest; with no `only`, every model is involved.
    const facts = known?.get(f);
    if (facts && ofInvolvedModel(f)) {
      documents.versions.push({ file: f, value: facts });
      return false;
    }
    return ofInvolvedModel(f) && parseManifestPath(f) !== undefined;
  });
  // Batches through the source's bulk read where it has one (the work tree reads synchronously,
  // several times faster than as many async reads); otherwise `concurrency` reads at a time.
  const batches: string[][] = [];
  for (let i = 0; i < manifests.length; i += 512) batches.push(manifests.slice(i, i + 512));
  await forEachLimit(batches, 1, async (batch) => {
    const texts = source.readFiles ? await source.readFiles(batch) : await readEach(source, batch, concurrency);
    batch.forEach((file, i) => {
      const text = texts[i];
      if (text === undefined) return;
      const where = parseManifestPath(file)!;
      if (where.kind === 'Model') {
        const value = loadAndReport(text, file, 'Model');
        if (value) documents.models.push({ file, value });
      } else {
        // A version of a touched model that is not being validated counts for the one-Production
        // rule only: its stage is read from the text where that is exact, else it is parsed, so
        // a 2-file check does not grow with the parse of the model's thousand versions.
        const stage = only && !selected(file) ? quickStage(text) : undefined;
        if (stage) {
          documents.stages!.push({ file, value: { model: where.model, version: where.version, stage } });
          return;
        }
        const value = loadAndReport(text, file, 'ModelVersion');
        // Only what the cross-file rules read: a 100k-version registry stays small in memory.
        if (value) documents.versions.push({ file, value: { model: value.model, version: value.version, stage: value.stage, artifact: value.artifact } });
      }
    });
  });

  for (const p of checkRegistry(documents)) {
    const model = modelOf(p.file);
    if (selected(p.file) || (MODEL_WIDE.has(p.code) && involved(model))) problems.push(p);
  }

  // Cross-file problems name a field; find its line in the file's text (few files, read again).
  await forEachLimit(
    problems.filter((p) => p.line === undefined && p.field),
    concurrency,
    async (p) => {
      let text = texts.get(p.file);
      if (text === undefined) {
        text = (await source.readFile(p.file)) ?? '';
        texts.set(p.file, text);
      }
      Object.assign(p, locateField(text, p.field!));
    },
  );

  const checked = [REGISTRY_FILE, POLICY_FILE, ...tree].filter((f) => !missing.has(f) && selected(f)).length;
  return { valid: problems.length === 0, problems: sortProblems(problems), checked };
}

/**
 * Every path under models/: `models/<m>/<entry>` and `models/<m>/versions/<entry>`. Folders with
 * invalid names are listed as `models/<name>` and not entered; with `enter`, only the models it
 * accepts are listed.
 */
async function listModelsTree(source: RegistrySource, concurrency = 64, enter?: (model: string) => boolean): Promise<string[]> {
  const out: string[] = [];
  const names = (await source.listDir(MODELS_DIR)).filter((name) => !enter || enter(name));
  await forEachLimit(names, concurrency, async (name) => {
    const folder = `${MODELS_DIR}/${name}`;
    const children = /^[a-z0-9-]{1,63}$/.test(name) ? await source.listDir(folder) : [];
    if (children.length === 0) out.push(folder);
    for (const child of children) {
      if (child === 'versions') {
        const versions = await source.listDir(`${folder}/versions`);
        for (const v of versions) out.push(`${folder}/versions/${v}`);
      } else out.push(`${folder}/${child}`);
    }
  });
  return out.sort();
}

async function readEach(source: RegistrySource, files: string[], concurrency: number): Promise<Array<string | undefined>> {
  const out = new Array<string | undefined>(files.length);
  await forEachLimit(
    files.map((f, i) => [f, i] as const),
    concurrency,
    async ([f, i]) => {
      out[i] = await source.readFile(f);
    },
  );
  return out;
}

/** Runs `task` over `items`, at most `limit` at a time. */
async function forEachLimit<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
