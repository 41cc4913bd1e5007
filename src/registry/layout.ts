import { usageError } from '../errors.js';
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

const STAGE_KEY = /^["']?stage["']?[ \t]*:/gm;
const STAGE_LINE = /^stage:[ \t]*(None|Staging|Production|Archived)[ \t]*(?:#.*)?$/m;
/** Lines before a document's content: blank, comment, directive, or a bare `---` start marker. */
const PREAMBLE = /^(?:[ \t]*(?:#.*)?|%.*|---[ \t]*(?:#.*)?)$/;
/** A column-0 explicit key, anchor, tag or alias: another way to spell a top-level key. */
const SPECIAL_LINE = /^[?&!*]/m;
/** A document marker after the content: a second document, or the first one's end. */
const LATER_MARKER = /^(?:---|\.\.\.)(?:[ \t]|$)/m;

/**
 * The stage of a version manifest read from its text without parsing it, where the text leaves
 * no doubt; undefined otherwise (the parser decides). Exact for every manifest the loader
 * accepts: the document is a block mapping (its first content line is a plain or quoted key at
 * column 0), and its top-level `stage` key can then only be a column-0 line that STAGE_KEY
 * matches, since the other spellings are refused here: an explicit key (`? stage`), an anchor,
 * tag or alias, or an escape (`"st\u0061ge"`, so: any backslash). A nested `stage:` line at
 * column 0 (a flow collection may continue there) is therefore either the only one, in a
 * manifest without a stage (which does not load), or a second match, which gives undefined.
 * One flow mapping (`{…}`), more than one document, or a stage spelled any other way than
 * `stage: <Stage>` also give undefined.
 */
export function plainStage(text: string): Stage | undefined {
  if (text.includes('\\') || SPECIAL_LINE.test(text)) return undefined;
  const keys = text.match(STAGE_KEY);
  if (!keys || keys.length !== 1) return undefined;
  let at = 0;
  for (;;) {
    const end = text.indexOf('\n', at);
    const line = text.slice(at, end < 0 ? undefined : end);
    if (!PREAMBLE.test(line)) {
      if (!/^[A-Za-z0-9_"']/.test(line)) return undefined;
      break;
    }
    if (end < 0) return undefined;
    at = end + 1;
  }
  if (LATER_MARKER.test(text.slice(at))) return undefined;
  return STAGE_LINE.exec(text)?.[1] as Stage | undefined;
}

/** Stage names compare case-insensitively on the command line: `fraud@production`. */
export function parseStage(text: string): Stage | undefined {
  return STAGES.find((s) => s.toLowerCase() === text.toLowerCase());
}

export type ModelRef =
  { model: string; selector: 'latest' } | { model: string; selector: 'version'; version: number } | { model: string; selector: 'stage'; stage: Stage };

/** `fraud`, `fraud@3`, `fraud@production`. */
export function parseModelRef(text: string): ModelRef {
  const at = text.indexOf('@');
  const model = assertModelName(at < 0 ? text : text.slice(0, at));
  if (at < 0) return { model, selector: 'latest' };
  const rest = text.slice(at + 1);
  if (/^[1-9][0-9]{0,8}$/.test(rest)) return { model, selector: 'version', version: Number(rest) };
  const stage = parseStage(rest);
  if (stage) return { model, selector: 'stage', stage };
  throw usageError(`invalid reference ${JSON.stringify(text)}: expected <model>, <model>@<version> or <model>@<stage>`);
}
