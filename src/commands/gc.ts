import { emit, parseCommand, type Command } from '../cli/context.js';
import { ExitCode, usageError } from '../errors.js';
import { openRegistry } from '../registry/snapshot.js';
import { findGarbage, referencesOfEveryHead, removeGarbage, type Garbage } from '../store/gc.js';
import { openStore } from '../store/store.js';

/** Uploads younger than this may still be running: left alone unless --older-than says otherwise. */
const DEFAULT_OLDER_THAN = '24h';

/** `30s`, `15m`, `24h`, `7d` → milliseconds. */
export function parseDuration(text: string): number {
  const m = /^([0-9]+)(s|m|h|d)$/.exec(text);
  if (!m) throw usageError(`--older-than ${text}: a whole number with s, m, h or d (e.g. 24h, 7d)`);
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

/**
 * `modelgate gc` (SPEC v2 §4, v3 §14): in a clone with the whole history, after fetching every
 * branch and pull request head of the remote, removes staging areas, incomplete multipart
 * uploads and uploads whose manifest never came, all older than --older-than; with
 * --unreferenced also every artifact no manifest in any of those commits references. Prints
 * what it removed and the bytes that really freed.
 */
export const run: Command = async (ctx) => {
  const { values, positionals, misuse } = parseCommand('gc', ctx.argv);
  if (positionals.length > 0) throw misuse('gc takes no arguments');
  const cutoff = new Date(Date.now() - parseDuration(values['older-than'] ?? DEFAULT_OLDER_THAN));
  const { repo, snapshot } = openRegistry(ctx);
  // The references first, the store after: bytes a registration adds meanwhile are younger than the cutoff or marked.
  const referenced = await referencesOfEveryHead(repo);
  const store = await openStore((await snapshot.config()).storage, ctx.env);
  try {
    const found = await findGarbage(store, cutoff, referenced, { unreferenced: values.unreferenced });
    const dryRun = Boolean(values['dry-run']);
    const { removed, bytes } = dryRun ? { removed: found, bytes: found.reduce((n, g) => n + g.bytes, 0) } : await removeGarbage(store, found);
    const verb = dryRun ? 'would remove' : 'removed';
    const shown = (g: Garbage) => ({ kind: g.kind, key: g.key, bytes: g.bytes, modified: g.modified.toISOString() });
    emit(ctx, { dryRun, removed: removed.map(shown), bytes }, () =>
      [...removed.map((g) => `${verb} ${g.kind} ${g.key} (${g.bytes} bytes)`), `${verb} ${removed.length} item(s), ${bytes} bytes reclaimed`].join('\n'),
    );
  } finally {
    store.close();
  }
  return ExitCode.ok;
};
