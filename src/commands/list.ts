import { COMMAND_SPECS, usageOf } from '../cli/commands.js';
import { parseCommandArgs, type Command } from '../cli/context.js';
import { formatTable } from '../cli/table.js';
import { usageError } from '../errors.js';
import { STAGES, type Stage } from '../manifest/types.js';
import { keyMetrics, shortTime, summarize } from '../query/present.js';
import { matchWhere, parseWhere, requiredStage } from '../query/where.js';
import { versionBatches } from '../registry/catalog.js';
import { assertModelName, parseStage } from '../registry/layout.js';
import { assertModelExists, locateRegistry } from '../registry/snapshot.js';

const USAGE = `modelgate ${usageOf('list')}`;

/** Output held back before streaming starts: a failure early in a scan prints only the error. */
const HOLD_BYTES = 1 << 20;

/**
 * `modelgate list`: versions of every model (or one), filtered by stage and a `--where` expression.
 * Streamed: versions are matched and printed one model at a time, so memory does not grow with
 * the registry (`--json` holds nothing; the table holds its text rows, to align the columns).
 */
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
  for await (const batch of versionBatches(root, { model, stage: prefilter })) {
    let chunk = '';
    for (const v of batch) {
      if (stage && v.stage !== stage) continue;
      if (where && !matchWhere(where, v)) continue;
      if (ctx.json) chunk += `${count === 0 ? '[\n  ' : ',\n  '}${JSON.stringify(summarize(v), null, 2).replace(/\n/g, '\n  ')}`;
      else if (!ctx.quiet) rows.push([v.model, v.version, v.stage, shortTime(v.createdAt), keyMetrics(v.metrics)]);
      count++;
    }
    if (chunk) print(chunk);
  }
  if (model && count === 0) assertModelExists(root, model);

  if (ctx.json) print(count === 0 ? '[]\n' : '\n]\n');
  else if (!ctx.quiet) print(count === 0 ? 'no versions match\n' : formatTable(['MODEL', 'VERSION', 'STAGE', 'CREATED', 'METRICS'], rows) + '\n');
  if (held) ctx.stdout(held);
  return 0;
};
