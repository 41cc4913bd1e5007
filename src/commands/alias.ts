import { emit, parseCommand, type Command, type CommandContext } from '../cli/context.js';
import { formatTable } from '../cli/table.js';
import { versionNumber } from '../cli/version-arg.js';
import { ExitCode, ModelgateError, usageError } from '../errors.js';
import { runChange } from '../promote/command.js';
import { planAliasDelete, planAliasSet } from '../promote/plan.js';
import { assertModelName, parseModelRef } from '../registry/layout.js';
import { openReadRegistry } from '../registry/snapshot.js';

/**
 * `modelgate alias set <model>@<N> <alias>`, `alias delete <model> <alias>`, `alias list [<model>]`
 * (SPEC v3 §9). Set and delete go through the one change pipeline (local commit, --push, --pr,
 * --dry-run), the pins of environments that follow the alias in the same commit.
 */
export const run: Command = async (ctx) => {
  const { values, positionals, misuse } = parseCommand('alias', ctx.argv);
  const [sub, ...args] = positionals;
  switch (sub) {
    case 'set': {
      if (args.length !== 2) throw misuse('alias set needs a version and an alias: alias set <model>@<version> <alias>');
      const [target, alias] = args as [string, string];
      // A bare model name is E_BARE_MODEL_REF (exit 2): an alias points at one version, named.
      const ref = parseModelRef(target);
      return runChange(ctx, values, async (snap) => planAliasSet(snap, ref.model, await versionNumber(snap, ref), alias));
    }
    case 'delete': {
      if (args.length !== 2) throw misuse('alias delete needs a model and an alias: alias delete <model> <alias>');
      const [model, alias] = args as [string, string];
      return runChange(ctx, values, (snap) => planAliasDelete(snap, assertModelName(model), alias));
    }
    case 'list': {
      if (args.length > 1) throw misuse('alias list takes at most one model');
      if (values.pr || values.push || values['dry-run']) throw usageError('alias list reads only: --pr, --push and --dry-run do not apply');
      return list(ctx, args[0] === undefined ? undefined : assertModelName(args[0]));
    }
    default:
      throw misuse(`alias needs set, delete or list${sub ? `, not ${JSON.stringify(sub)}` : ''}`);
  }
};

async function list(ctx: CommandContext, model: string | undefined): Promise<number> {
  const { snapshot } = await openReadRegistry(ctx);
  const names = await snapshot.modelNames();
  if (model !== undefined && !names.includes(model))
    throw new ModelgateError('E_NOT_FOUND', `unknown model ${model}: no models/${model}/ in the registry`, ExitCode.content);
  const models = model ? [model] : names;
  const rows: Array<{ model: string; alias: string; version: number; stage: string }> = [];
  for (const m of models) {
    const aliases = await snapshot.aliases(m);
    for (const alias of Object.keys(aliases).sort()) {
      const version = aliases[alias]!;
      rows.push({ model: m, alias, version, stage: (await snapshot.version(m, version))?.stage ?? 'missing' });
    }
  }
  emit(ctx, rows, () =>
    rows.length
      ? formatTable(
          ['MODEL', 'ALIAS', 'VERSION', 'STAGE'],
          rows.map((r) => [r.model, r.alias, r.version, r.stage]),
        )
      : 'no aliases',
  );
  return ExitCode.ok;
}
