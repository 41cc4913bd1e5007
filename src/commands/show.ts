import { emit, parseCommand, type Command } from '../cli/context.js';
import { formatVersion } from '../query/present.js';
import { parseModelRef } from '../registry/layout.js';
import { isRegistryUrl, openReadRegistry, openRegistry, remoteUnsupported, snapshotAt } from '../registry/snapshot.js';

/** `modelgate show`: one version, now or as the registry was at a commit or date. */
export const run: Command = async (ctx) => {
  const { values, positionals, misuse } = parseCommand('show', ctx.argv);
  if (positionals.length !== 1) throw misuse('expected one reference (fraud@3, fraud@latest, fraud@production)');
  const ref = parseModelRef(positionals[0]!);
  if (values.at !== undefined && isRegistryUrl(ctx.registry)) throw remoteUnsupported('show --at');
  const past = values.at === undefined ? undefined : await snapshotAt(openRegistry(ctx), values.at);
  const version = await (past?.snapshot ?? (await openReadRegistry(ctx)).snapshot).resolveRef(ref);
  emit(ctx, version, () => {
    const block = formatVersion(version);
    return past ? `as of ${past.commit.slice(0, 12)} (${past.date})\n${block}` : block;
  });
  return 0;
};
