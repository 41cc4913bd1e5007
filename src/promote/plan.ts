import { setScalar } from '../deploy/yaml-splice.js';
import { ExitCode, ModelgateError, usageError } from '../errors.js';
import type { ModelVersion, Stage } from '../manifest/types.js';
import { aliasesFile, assertAliasName, assertModelName, modelFile, versionFile } from '../registry/layout.js';
import { deleteAliasIn, newAliasesFile, setAliasIn } from './aliases-file.js';
import type { RegistrySnapshot } from '../registry/snapshot.js';
import type { StageHistory } from '../gate/types.js';
import { branchName, type ManifestChange } from './change.js';

/** One file a change rewrites: registry-relative path, text before and after. */
export interface FileEdit {
  path: string;
  before: string;
  after: string;
}

/** The manifest part of a planned change; `completeChange` (pins.ts) adds the pins it moves. */
export type ChangePlan = ManifestChange;

const noChange = (message: string) => new ModelgateError('E_NO_CHANGE', message, ExitCode.content);

async function readVersion(snap: RegistrySnapshot, model: string, version: number): Promise<{ v: ModelVersion; text: string; path: string }> {
  assertModelName(model);
  const path = versionFile(model, version);
  const v = await snap.version(model, version);
  const text = await snap.source.readFile(path);
  if (!v || text === undefined) throw new ModelgateError('E_NOT_FOUND', `${model}@${version} does not exist`, ExitCode.content);
  return { v, text, path };
}

/** The stage field set to `to`, and nothing else in the file: one scalar spliced in place. */
const withStage = (text: string, to: Stage, file: string) => setScalar(text, ['stage'], to, file);

/** The verb a stage change is made with: it names the change in summaries and commit messages. */
export type StageChangeVerb = 'promote' | 'rollback' | 'archive';
const TITLE: Record<StageChangeVerb, string> = { promote: 'Promote', rollback: 'Roll back', archive: 'Archive' };

/**
 * A stage change of `model@version`. Promoting to Production archives whatever held it, in the
 * same change, so the registry never has two Production versions of a model.
 */
export async function planStageChange(
  snap: RegistrySnapshot,
  model: string,
  version: number,
  to: Stage,
  verb: StageChangeVerb = 'promote',
): Promise<ChangePlan> {
  const { v, text, path } = await readVersion(snap, model, version);
  if (v.stage === to) throw noChange(`${model}@${version} is already in ${to}`);
  if (to === 'Archived') await assertNoAlias(snap, model, version);
  const edits: FileEdit[] = [{ path, before: text, after: withStage(text, to, path) }];
  const changes = [`${model}@${version}: ${v.stage} → ${to}`];
  const versions: ModelVersion[] = [{ ...v, stage: to }];
  if (to === 'Production') {
    for (const old of await snap.inStage(model, 'Production')) {
      if (old.version === version) continue;
      await assertNoAlias(snap, model, old.version);
      const o = await readVersion(snap, model, old.version);
      edits.push({ path: o.path, before: o.text, after: withStage(o.text, 'Archived', o.path) });
      changes.push(`${model}@${old.version}: Production → Archived`);
      versions.push({ ...old, stage: 'Archived' });
    }
  }
  const summary = `${TITLE[verb]} ${model}@${version} to ${to}`;
  return {
    kind: verb,
    summary,
    changes,
    edits,
    versions,
    branch: branchName({ kind: 'stage', model, version, stage: to }),
    message: `${summary}\n\n${changes.map((c) => `- ${c}`).join('\n')}\n`,
  };
}

/**
 * Production back to a version that was in Production before, proven from the branch's git
 * history: `to`, or the highest-numbered such version other than the current one.
 */
export async function planRollback(snap: RegistrySnapshot, history: StageHistory, model: string, to?: number): Promise<ChangePlan> {
  const current = (await snap.inStage(model, 'Production'))[0];
  if (to !== undefined) {
    if (!(await history.wasInStage(model, to, 'Production'))) {
      throw new ModelgateError(
        'E_NEVER_PRODUCTION',
        `${model}@${to} was never in Production: a rollback returns to a former Production version`,
        ExitCode.content,
      );
    }
    return planStageChange(snap, model, to, 'Production', 'rollback');
  }
  const numbers = (await snap.versionNumbers(model)).filter((n) => n !== current?.version).reverse();
  if (numbers.length === 0 && !current) throw new ModelgateError('E_NOT_FOUND', `model ${model} has no versions`, ExitCode.content);
  for (const n of numbers) {
    if (await history.wasInStage(model, n, 'Production')) return planStageChange(snap, model, n, 'Production', 'rollback');
  }
  throw new ModelgateError(
    'E_NEVER_PRODUCTION',
    `no version of ${model} other than the current one was ever in Production: nothing to roll back to`,
    ExitCode.content,
  );
}

/**
 * An alias never points at an Archived version (SPEC v3 §9): archiving its target is refused,
 * naming the alias and how to move it, rather than moving an alias nobody asked to move.
 */
async function assertNoAlias(snap: RegistrySnapshot, model: string, version: number): Promise<void> {
  const names = Object.entries(await snap.aliases(model))
    .filter(([, n]) => n === version)
    .map(([a]) => a)
    .sort();
  if (!names.length) return;
  throw new ModelgateError(
    'E_ALIAS_TARGET',
    `${model}@${version} cannot be archived: ${names.map((a) => `${model}@${a}`).join(', ')} point${names.length === 1 ? 's' : ''} at it; move the alias first (modelgate alias set ${model}@<N> ${names[0]}) or delete it (modelgate alias delete ${model} ${names[0]})`,
    ExitCode.content,
  );
}

/** `model@alias` set to `version`, or moved there: the alias's one line in models/<model>/aliases.yaml. */
export async function planAliasSet(snap: RegistrySnapshot, model: string, version: number, alias: string): Promise<ChangePlan> {
  assertAliasName(alias);
  const { v } = await readVersion(snap, model, version);
  if (v.stage === 'Archived') {
    throw new ModelgateError('E_ALIAS_TARGET', `${model}@${version} is Archived: an alias points at a version that is not`, ExitCode.content);
  }
  const path = aliasesFile(model);
  const text = await snap.source.readFile(path);
  const current = await snap.aliases(model);
  const from = Object.hasOwn(current, alias) ? current[alias] : undefined;
  if (from === version) throw noChange(`${model}@${alias} already points at version ${version}`);
  const after = text === undefined ? newAliasesFile(model, { [alias]: version }) : setAliasIn(text, alias, version, path);
  const summary = from === undefined ? `Set ${model}@${alias} to version ${version}` : `Move ${model}@${alias} from version ${from} to ${version}`;
  const changes = [`${model}@${alias}: ${from === undefined ? 'unset' : `v${from}`} → v${version}`];
  return {
    kind: 'alias',
    summary,
    changes,
    edits: [{ path, before: text ?? '', after }],
    versions: [v],
    branch: branchName({ kind: 'alias', model, alias }),
    message: `${summary}\n\n${changes.map((c) => `- ${c}`).join('\n')}\n`,
  };
}

/**
 * `model@alias` back to a version it pointed at before, proven from the branch's git history:
 * `to`, or the latest such version other than the current one that still exists and is not Archived.
 */
export async function planAliasRollback(snap: RegistrySnapshot, history: StageHistory, model: string, alias: string, to?: number): Promise<ChangePlan> {
  assertModelName(model);
  assertAliasName(alias);
  const targets = (await history.aliasTargets?.(model, alias)) ?? [];
  const current = (await snap.aliases(model))[alias];
  const never = (message: string) => new ModelgateError('E_NEVER_ALIASED', message, ExitCode.content);
  let target = to;
  if (target !== undefined) {
    if (!targets.includes(target))
      throw never(`${model}@${alias} never pointed at version ${target}: a rollback returns to a former target (${targets.join(', ') || 'none'})`);
  } else {
    for (const n of [...targets].reverse()) {
      if (n === current) continue;
      const v = await snap.version(model, n);
      if (v && v.stage !== 'Archived') {
        target = n;
        break;
      }
    }
    if (target === undefined) throw never(`${model}@${alias} pointed at no other version that still serves: nothing to roll back to`);
  }
  const plan = await planAliasSet(snap, model, target, alias);
  const summary = `Roll back ${model}@${alias}${current !== undefined ? ` from version ${current}` : ''} to ${target}`;
  return { ...plan, kind: 'rollback', summary, message: `${summary}\n\n${plan.changes.map((c) => `- ${c}`).join('\n')}\n` };
}

/** `model@alias` removed from models/<model>/aliases.yaml. */
export async function planAliasDelete(snap: RegistrySnapshot, model: string, alias: string): Promise<ChangePlan> {
  assertModelName(model);
  assertAliasName(alias);
  const path = aliasesFile(model);
  const text = await snap.source.readFile(path);
  const current = await snap.aliases(model);
  if (text === undefined || !Object.hasOwn(current, alias)) {
    throw new ModelgateError('E_NOT_FOUND', `${model} has no alias ${alias}`, ExitCode.content);
  }
  const summary = `Delete ${model}@${alias} (was version ${current[alias]})`;
  const changes = [`${model}@${alias}: v${current[alias]} → unset`];
  return {
    kind: 'alias',
    summary,
    changes,
    edits: [{ path, before: text, after: deleteAliasIn(text, alias, path) }],
    versions: [],
    branch: branchName({ kind: 'alias', model, alias }),
    message: `${summary}\n\n${changes.map((c) => `- ${c}`).join('\n')}\n`,
  };
}

const ANNOTATION_KEY = /^[A-Za-z0-9]([A-Za-z0-9_./-]{0,126}[A-Za-z0-9])?$/;

/** `key=value` pairs set as annotations in place; other lines stay byte for byte. */
export async function planAnnotate(snap: RegistrySnapshot, model: string, version: number, pairs: string[]): Promise<ChangePlan> {
  if (pairs.length === 0) throw usageError('annotate needs at least one key=value');
  const entries = pairs.map((p) => {
    const eq = p.indexOf('=');
    const key = eq < 0 ? '' : p.slice(0, eq);
    if (!ANNOTATION_KEY.test(key)) throw usageError(`annotation ${JSON.stringify(p)}: expected key=value with a key of letters, digits, . _ / -`);
    return [key, p.slice(eq + 1)] as const;
  });
  const keys = entries.map(([key]) => key);
  const twice = keys.find((key, i) => keys.indexOf(key) !== i);
  if (twice !== undefined) throw usageError(`annotation ${JSON.stringify(twice)} is given twice: give each key one value`);
  const { v, text, path } = await readVersion(snap, model, version);
  let after = text;
  const changed: string[] = [];
  for (const [key, value] of entries) {
    if (v.annotations?.[key] === value) continue;
    after = setScalar(after, ['annotations', key], value, path);
    changed.push(key);
  }
  if (!changed.length) throw noChange(`${model}@${version} already has ${pairs.join(', ')}`);
  const summary = `Annotate ${model}@${version}: ${entries.map(([k, val]) => `${k}=${val}`).join(', ')}`;
  return {
    kind: 'annotate',
    summary,
    changes: [`${model}@${version}: annotations ${changed.join(', ')}`],
    edits: [{ path, before: text, after }],
    versions: [{ ...v, annotations: { ...v.annotations, ...Object.fromEntries(entries) } }],
    branch: branchName({ kind: 'annotate', model, version, keys: changed }),
    message: `${summary}\n`,
  };
}

/**
 * A model's description set in its model.yaml (made when the model has none yet): an edit the
 * gate judges by the policy's `paths` rules, as any change of model.yaml.
 */
export async function planModelDescription(snap: RegistrySnapshot, model: string, description: string): Promise<ChangePlan> {
  assertModelName(model);
  const path = modelFile(model);
  const [text, current, numbers] = await Promise.all([snap.source.readFile(path), snap.model(model), snap.versionNumbers(model)]);
  if (text === undefined && numbers.length === 0) throw new ModelgateError('E_NOT_FOUND', `model ${model} does not exist`, ExitCode.content);
  if ((current?.description ?? '') === description) throw noChange(`${model} already has that description`);
  const after = setScalar(text ?? `apiVersion: modelgate.dev/v1\nkind: Model\nname: ${model}\n`, ['description'], description, path);
  const summary = `Describe ${model}`;
  return {
    kind: 'annotate',
    summary,
    changes: [`${model}: description`],
    edits: [{ path, ...(text === undefined ? {} : { before: text }), after }],
    versions: [],
    branch: branchName({ kind: 'model', model }),
    message: `${summary}\n\n${description}\n`,
  };
}
