import { COMMAND_SPECS, usageOf } from '../cli/commands.js';
import { emit, parseCommandArgs, type Command } from '../cli/context.js';
import { formatTable } from '../cli/table.js';
import { ExitCode, ModelgateError, usageError } from '../errors.js';
import { STAGES, type Stage } from '../manifest/types.js';
import { keyMetrics, shortTime, summarize } from '../query/present.js';
import { matchWhere, parseWhere, requiredStage } from '../query/where.js';
import { scanVersions } from '../registry/catalog.js';
import { assertModelName, parseStage } from '../registry/layout.js';
import { assertModelExists, isRegistryUrl, locateRegistry, openReadRegistry, type RegistrySnapshot } from '../registry/snapshot.js';
import type { ModelVersion } from '../manifest/types.js';

const USAGE = `modelgate ${usageOf('list')}`;

/** `modelgate list`: versions of every model (or one), filtered by stage and a `--where` expression. */
export const run: Command = async (ctx) => {
  const { values, positionals } = parseCommandArgs(ctx.argv, COMMAND_SPECS.list.flags, USAGE);
  if (positionals.length > 0) throw usageError(`unexpected argument ${JSON.stringify(positionals[0])}\nusage: ${USAGE}`);
  const model = values.model === undefined ? undefined : assertModelName(values.model);
  let stage: Stage | undefined;
  if (values.stage !== undefined) {
    stage = parseStage(values.stage);
    if (!stage) throw usageError(`--stage ${values.stage}: expected one of ${STAGES.join(', ')}`);
  }
  const where = values.where === undefined ? undefined : parseWhere(values.where);

  const prefilter = stage ?? (where ? (requiredStage(where) as Stage | undefined) : undefined);
  let versions: ModelVersion[];
  if (isRegistryUrl(ctx.registry)) {
    const { snapshot } = await openReadRegistry(ctx);
    versions = await snapshotVersions(snapshot, model, prefilter);
    if (model && versions.length === 0 && !(await snapshot.modelNames()).includes(model)) {
      throw new ModelgateError('E_NOT_FOUND', `unknown model ${model}: no models/${model}/ in ${ctx.registry}`, ExitCode.content);
    }
  } else {
    const root = locateRegistry(ctx.cwd, ctx.registry);
    versions = await scanVersions(root, { model, stage: prefilter });
    if (model && versions.length === 0) assertModelExists(root, model);
  }
  if (stage && prefilter !== stage) versions = versions.filter((v) => v.stage === stage);
  if (where) versions = versions.filter((v) => matchWhere(where, v));

  emit(ctx, versions.map(summarize), () =>
    versions.length === 0
      ? 'no versions match'
      : formatTable(
          ['MODEL', 'VERSION', 'STAGE', 'CREATED', 'METRICS'],
          versions.map((v) => [v.model, v.version, v.stage, shortTime(v.createdAt), keyMetrics(v.metrics)]),
        ),
  );
  return 0;
};

/** A snapshot's versions (one model's, or all), only those in `stage` when given: the stage lookup reads without parsing the others. */
async function snapshotVersions(snapshot: RegistrySnapshot, model: string | undefined, stage: Stage | undefined): Promise<ModelVersion[]> {
  const out: ModelVersion[] = [];
  for (const m of model ? [model] : await snapshot.modelNames()) {
    out.push(...(stage ? (await snapshot.inStage(m, stage)).reverse() : await snapshot.versions(m)));
  }
  return out;
}
