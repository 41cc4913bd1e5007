import { COMMAND_SPECS, usageOf } from '../cli/commands.js';
import { emit, parseCommandArgs, type Command } from '../cli/context.js';
import { formatTable } from '../cli/table.js';
import { usageError } from '../errors.js';
import { STAGES, type Stage } from '../manifest/types.js';
import { keyMetrics, shortTime, summarize } from '../query/present.js';
import { matchWhere, parseWhere, requiredStage } from '../query/where.js';
import { scanVersions } from '../registry/catalog.js';
import { assertModelName, parseStage } from '../registry/layout.js';
import { assertModelExists, locateRegistry } from '../registry/snapshot.js';

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

  const root = locateRegistry(ctx.cwd, ctx.registry);
  const prefilter = stage ?? (where ? (requiredStage(where) as Stage | undefined) : undefined);
  let versions = await scanVersions(root, { model, stage: prefilter });
  if (stage && prefilter !== stage) versions = versions.filter((v) => v.stage === stage);
  if (where) versions = versions.filter((v) => matchWhere(where, v));
  if (model && versions.length === 0) assertModelExists(root, model);

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
