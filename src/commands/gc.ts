import { COMMAND_SPECS, usageOf } from '../cli/commands.js';
import { emit, parseCommandArgs, type Command } from '../cli/context.js';
import { ExitCode, usageError } from '../errors.js';
import { openRegistry } from '../registry/snapshot.js';
import { findGarbage, referencedArtifacts, removeGarbage } from '../store/gc.js';
import { openStore } from '../store/store.js';

const USAGE = `modelgate ${usageOf('gc')}`;
/** Uploads younger than this may still be running: left alone unless --older-than says otherwise. */
const DEFAULT_OLDER_THAN = '24h';

/** `30s`, `15m`, `24h`, `7d` → milliseconds. */
export function parseDuration(text: string): number {
  const m = /^([0-9]+)(s|m|h|d)$/.exec(text);
  if (!m) throw usageError(`--older-than ${text}: a whole number with s, m, h or d (e.g. 24h, 7d)`);
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

/**
 * `modelgate gc` (SPEC v2 §4): removes staging objects and incomplete multipart uploads older
 * than --older-than; with --unreferenced also content objects that no manifest in any commit of
 * any ref references. Prints what it removes and the bytes reclaimed.
 */
export const run: Command = async (ctx) => {
  const { values, positionals } = parseCommandArgs(ctx.argv, COMMAND_SPECS.gc.flags, USAGE);
  if (positionals.length > 0) throw usageError(`gc takes no arguments\nusage: ${USAGE}`);
  const cutoff = new Date(Date.now() - parseDuration(values['older-than'] ?? DEFAULT_OLDER_THAN));
  const { repo, snapshot } = openRegistry(ctx);
  const referenced = values.unreferenced ? await referencedArtifacts(repo) : undefined;
  const store = await openStore((await snapshot.config()).storage, ctx.env);
  try {
    const items = await findGarbage(store, cutoff, referenced);
    if (!values['dry-run']) await removeGarbage(store, items);
    const bytes = items.reduce((n, g) => n + g.bytes, 0);
    const verb = values['dry-run'] ? 'would remove' : 'removed';
    emit(ctx, { dryRun: Boolean(values['dry-run']), removed: items.map((g) => ({ ...g, modified: g.modified.toISOString() })), bytes }, () =>
      [...items.map((g) => `${verb} ${g.kind} ${g.key} (${g.bytes} bytes)`), `${verb} ${items.length} item(s), ${bytes} bytes reclaimed`].join('\n'),
    );
  } finally {
    store.close();
  }
  return ExitCode.ok;
};
