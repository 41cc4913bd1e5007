import { ExitCode, ModelgateError, usageError } from '../errors.js';
import { STAGES, type Stage } from '../manifest/types.js';

/** SPEC §1: ASCII only, 1–63 characters, no leading or trailing dash. */
export const MODEL_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export const REGISTRY_FILE = 'modelgate.yaml';
export const POLICY_FILE = 'policies/promotion.yaml';
export const MODELS_DIR = 'models';

export function isModelName(name: string): boolean {
  return MODEL_NAME.test(name);
}

/** A version number: a safe integer from 1 (the text form is matched by the path and ref patterns). */
export function isVersionNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1;
}

export function assertModelName(name: string): string {
  if (!isModelName(name)) {
    throw usageError(`invalid model name ${JSON.stringify(name)}: use lowercase letters, digits and dashes (${MODEL_NAME.source})`);
  }
  return name;
}

/** Paths are only ever built from a validated name and version, never from raw input. */
export function modelFile(model: string): string {
  return `${MODELS_DIR}/${assertModelName(model)}/model.yaml`;
}

export function versionsDir(model: string): string {
  return `${MODELS_DIR}/${assertModelName(model)}/versions`;
}

export function versionFile(model: string, version: number): string {
  if (!isVersionNumber(version)) throw usageError(`invalid version ${String(version)}: versions are integers from 1`);
  return `${versionsDir(model)}/${version}.yaml`;
}

/** SPEC v3 §9: an alias name; the stage names, `latest` and `v<digits>` are reserved (see `reservedAlias`). */
export const ALIAS_NAME = /^[a-z][a-z0-9_-]{0,63}$/;

/** Why an alias name is reserved, or undefined when it is not: the stages, `latest`, `v<digits>` (as MLflow). */
export function reservedAlias(name: string): string | undefined {
  if (STAGES.some((s) => s.toLowerCase() === name)) return 'a stage name';
  if (name === 'latest') return 'the newest version (@latest)';
  if (/^v[0-9]+$/.test(name)) return 'a version (v<digits>, as MLflow reserves it)';
  return undefined;
}

export function isAliasName(name: string): boolean {
  return ALIAS_NAME.test(name) && reservedAlias(name) === undefined;
}

/** Throws E_USAGE (exit 2) for a name that cannot be an alias, saying why. */
export function assertAliasName(name: string): string {
  if (!ALIAS_NAME.test(name)) {
    throw usageError(`invalid alias ${JSON.stringify(name)}: a lowercase letter, then up to 63 lowercase letters, digits, _ and - (${ALIAS_NAME.source})`);
  }
  const reserved = reservedAlias(name);
  if (reserved) throw usageError(`alias ${JSON.stringify(name)} is reserved: it is ${reserved}`);
  return name;
}

/** `models/<model>/aliases.yaml` (kind: ModelAliases, SPEC v3 §9). */
export function aliasesFile(model: string): string {
  return `${MODELS_DIR}/${assertModelName(model)}/aliases.yaml`;
}

/** The model whose aliases file `path` is, or undefined. */
export function parseAliasesPath(path: string): string | undefined {
  const m = /^models\/([^/]+)\/aliases\.yaml$/.exec(path);
  return m && isModelName(m[1]!) ? m[1] : undefined;
}

export type ManifestPath = { kind: 'Model'; model: string } | { kind: 'ModelVersion'; model: string; version: number };

/** Classifies a registry-relative path; undefined for anything that is not a model manifest. */
export function parseManifestPath(path: string): ManifestPath | undefined {
  const m = /^models\/([^/]+)\/(?:model\.yaml|versions\/([1-9][0-9]{0,8})\.yaml)$/.exec(path);
  if (!m || !isModelName(m[1]!)) return undefined;
  return m[2] === undefined ? { kind: 'Model', model: m[1]! } : { kind: 'ModelVersion', model: m[1]!, version: Number(m[2]) };
}

/** Sound: YAML can spell a stage name only literally or with a backslash escape in a double-quoted scalar. */
export function mayHaveStage(text: string, stage: Stage): boolean {
  return text.includes(stage) || text.includes('\\');
}

/** `stage: Production`, `stage: "Staging"  # note`, … : a value the line can only mean one way. */
const PLAIN_STAGE_LINE = new RegExp(`^stage:[ \\t]+(?:(${STAGES.join('|')})|"(${STAGES.join('|')})"|'(${STAGES.join('|')})')[ \\t]*(?:[ \\t]#.*)?$`);

/** Escapes, tabs, carriage returns and explicit keys (`? k`): the line scan leaves those to the parser. */
const UNSURE = /[\\\t\r]|^\?/m;

/**
 * Blank and comment lines, then a line that begins a block mapping's key at column 0: not `{`,
 * `[`, `?`, `-`, `%`, `---`, a tag, an anchor, an indented node or a byte-order mark.
 */
const BLOCK_MAPPING_START = /^(?: *(?:#[^\n]*)?\n)*[A-Za-z0-9_"']/;

/**
 * A version's stage from the text's lines alone, or undefined when only the parser can tell
 * (what history's `stageOf` answers: the loader's stage, else `stageFromLine`'s). A document
 * whose top level is a block mapping (the only form that starts with a key at column 0) has
 * its `stage` key at column 0 unless it is spelled with an escape (`"st\x61ge"`) or as an
 * explicit key (`? `), both refused here. A nested line could sit at column 0 only in a flow
 * collection or quoted scalar continued there, which the loader refuses inside a block mapping
 * (and which would make a second line mentioning `stage`). So when exactly one line that starts
 * at column 0 mentions `stage` and it is a plain `stage: <Stage>` line, and the text has no
 * escape, tab, carriage return or explicit key, that line is the `stage` key if the document is
 * valid, and the first `stage:` line (the answer for an invalid one) otherwise. A top-level flow
 * mapping (`{…}`, which may go on at column 0 with a nested `stage:` line) does not start like
 * a block mapping and gets undefined. Exact on purpose (test/history-stage.test.ts compares it
 * with stageOf on generated texts, test/validate.test.ts with the loader); it spares `history`
 * a YAML parse per blob, the gate's partial validation one per untouched version of a touched
 * model, and the pins a change carries one per version passed.
 */
export function quickStage(text: string): Stage | undefined {
  if (UNSURE.test(text) || !BLOCK_MAPPING_START.test(text)) return undefined;
  let found: Stage | undefined;
  for (let at = text.indexOf('stage'); at >= 0;) {
    const start = text.lastIndexOf('\n', at) + 1;
    let end = text.indexOf('\n', at);
    if (end < 0) end = text.length;
    // A line that starts at column 0 and mentions `stage`: it must be the one `stage:` line.
    if (text.charCodeAt(start) !== 32) {
      if (found !== undefined) return undefined;
      const m = PLAIN_STAGE_LINE.exec(text.slice(start, end));
      if (!m) return undefined;
      found = (m[1] ?? m[2] ?? m[3]) as Stage;
    }
    at = text.indexOf('stage', end);
  }
  return found;
}

/** Stage names compare case-insensitively on the command line: `fraud@production`. */
export function parseStage(text: string): Stage | undefined {
  return STAGES.find((s) => s.toLowerCase() === text.toLowerCase());
}

/**
 * What a version reference names: a number, the newest version (`@latest`), the newest version
 * in a stage, or the version an alias points at.
 */
export type ModelRef =
  | { model: string; selector: 'latest' }
  | { model: string; selector: 'version'; version: number }
  | { model: string; selector: 'stage'; stage: Stage }
  | { model: string; selector: 'alias'; alias: string };

/** The forms a version reference takes, for messages. */
const refForms = (model: string) => `${model}@<N>, ${model}@latest, ${model}@<stage> or ${model}@<alias>`;

/**
 * `fraud@3`, `fraud@latest`, `fraud@production` (stage names in any case), `fraud@champion` (an
 * alias, SPEC v3 §9). A bare model name is refused (E_BARE_MODEL_REF, exit 2): where one version
 * is acted on, nothing guesses which one (SPEC §9).
 */
export function parseModelRef(text: string): ModelRef {
  const at = text.indexOf('@');
  const model = assertModelName(at < 0 ? text : text.slice(0, at));
  if (at < 0) {
    throw new ModelgateError(
      'E_BARE_MODEL_REF',
      `${model} names a model, not a version: write ${refForms(model)} (a bare model name does not pick one; modelgate list --model ${model} lists its versions)`,
      ExitCode.usage,
      { model },
    );
  }
  const rest = text.slice(at + 1);
  if (/^[1-9][0-9]{0,8}$/.test(rest)) return { model, selector: 'version', version: Number(rest) };
  if (rest === 'latest') return { model, selector: 'latest' };
  const stage = parseStage(rest);
  if (stage) return { model, selector: 'stage', stage };
  if (isAliasName(rest)) return { model, selector: 'alias', alias: rest };
  throw usageError(`invalid reference ${JSON.stringify(text)}: expected ${refForms(model)}`);
}
