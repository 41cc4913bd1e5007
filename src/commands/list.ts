import { parseCommand, type Command } from '../cli/context.js';
import { formatTable } from '../cli/table.js';
import { ExitCode, ModelgateError, usageError } from '../errors.js';
import { STAGES, type ModelVersion, type Stage } from '../manifest/types.js';
import { keyMetrics, shortTime, summarize } from '../query/present.js';
import { matchWhere, parseWhere, readsField, requiredStage } from '../query/where.js';
import { versionBatches } from '../registry/catalog.js';
import { assertModelName, parseStage } from '../registry/layout.js';
import { assertModelExists, isRegistryUrl, locateRegistry, openReadRegistry, RegistrySnapshot } from '../registry/snapshot.js';
import { WorktreeSource } from '../registry/source.js';

/** Output held back before streaming starts: a failure early in a scan prints only the error. */
const HOLD_BYTES = 1 << 20;

/**
 * `modelgate list`: versions of every model (or one), filtered by stage and a `--where` expression.
 * Streamed: versions are matched and printed one model at a time, so memory does not grow with
 * the registry (`--json` holds nothing; the table holds its text rows, to align the columns).
 */
export const run: Command = async (ctx) => {
  const { values, positionals, misuse } = parseCommand('list', ctx.argv);
  if (positionals.length > 0) throw misuse(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const model = values.model === undefined ? undefined : assertModelName(values.model);
  let stage: Stage | undefined;
  if (values.stage !== undefined) {
    stage = parseStage(values.stage);
    if (!stage) throw usageError(`--stage ${values.stage}: expected one of ${STAGES.join(', ')}`);
  }
  const where = values.where === undefined ? undefined : parseWhere(values.where);

  const prefilter = stage ?? (where ? (requiredStage(where) as Stage | undefined) : undefined);
  let count = 0;
  const rows: Array<Array<string | number>> = [];
  // JSON as JSON.stringify(array, null, 2) writes it, one element at a time.
  let held = '';
  let streaming = false;
  const print = (text: string) => {
    if (streaming) return ctx.stdout(text);
    held += text;
    if (held.length >= HOLD_BYTES) {
      streaming = true;
      ctx.stdout(held);
      held = '';
    }
  };
  // A remote registry (--registry <url>) is read through its snapshot, one model at a time; a
  // local one streams from the catalog.
  const remote = isRegistryUrl(ctx.registry) ? (await openReadRegistry(ctx)).snapshot : undefined;
  const root = remote ? undefined : locateRegistry(ctx.cwd, ctx.registry);
  // The catalog's scan filters as it parses (in its threads), unless the filter reads the
  // versions' aliases, which are not in their files.
  const scanFilter = !remote && where && !readsField(where, 'alias') ? where : undefined;
  const batches = remote ? snapshotBatches(remote, model, prefilter) : versionBatches(root!, { model, stage: prefilter, where: scanFilter });
  // Each version's aliases (SPEC v3 §9), read once per model: shown, and `--where "alias = 'champion'"` filters on them.
  const aliasSource = remote ?? new RegistrySnapshot(new WorktreeSource(root!));
  const aliasCache = new Map<string, Promise<Map<number, string[]>>>();
  const aliasesOf = (m: string) => {
    let p = aliasCache.get(m);
    if (!p) aliasCache.set(m, (p = aliasSource.aliases(m).then(byVersion)));
    return p;
  };
  for await (const batch of batches) {
    let chunk = '';
    for (const v of batch) {
      if (stage && v.stage !== stage) continue;
      const aliases = (await aliasesOf(v.model)).get(v.version) ?? [];
      if (where && !scanFilter && !matchWhere(where, { ...v, alias: aliases } as ModelVersion)) continue;
      const summary = aliases.length ? { ...summarize(v), aliases } : summarize(v);
      if (ctx.json) chunk += `${count === 0 ? '[\n  ' : ',\n  '}${JSON.stringify(summary, null, 2).replace(/\n/g, '\n  ')}`;
      else if (!ctx.quiet)
        rows.push([
          v.model,
          v.version,
          aliases.length ? `${v.stage} ${aliases.map((a) => `@${a}`).join(' ')}` : v.stage,
          shortTime(v.createdAt),
          keyMetrics(v.metrics),
        ]);
      count++;
    }
    if (chunk) print(chunk);
  }
  if (model && count === 0) {
    if (root !== undefined) assertModelExists(root, model);
    else if (!(await remote!.modelNames()).includes(model))
      throw new ModelgateError('E_NOT_FOUND', `unknown model ${model}: no models/${model}/ in ${ctx.registry}`, ExitCode.content);
  }

  if (ctx.json) print(count === 0 ? '[]\n' : '\n]\n');
  else if (!ctx.quiet) print(count === 0 ? 'no versions match\n' : formatTable(['MODEL', 'VERSION', 'STAGE', 'CREATED', 'METRICS'], rows) + '\n');
  if (held) ctx.stdout(held);
  return 0;
};

/** Alias names by the version they point at, sorted. */
function byVersion(aliases: Record<string, number>): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const name of Object.keys(aliases).sort()) out.set(aliases[name]!, [...(out.get(aliases[name]!) ?? []), name]);
  return out;
}

/** A snapshot's versions, one model per batch (one model's, or all), only those in `stage` when given: the stage lookup reads without parsing the others. */
async function* snapshotBatches(snapshot: RegistrySnapshot, model: string | undefined, stage: Stage | undefined): AsyncGenerator<ModelVersion[]> {
  for (const m of model ? [model] : await snapshot.modelNames()) {
    yield stage ? (await snapshot.inStage(m, stage)).reverse() : await snapshot.versions(m);
  }
}
