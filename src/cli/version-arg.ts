import { usageError } from '../errors.js';
import { parseVersionArg } from '../promote/args.js';
import { assertModelName, parseModelRef, type ModelRef } from '../registry/layout.js';
import type { RegistrySnapshot } from '../registry/snapshot.js';

/**
 * The version a writing command acts on, from its positionals: `fraud@3`, `fraud@latest`,
 * `fraud@staging`, or the older two-word `fraud 3`. A bare model name is refused: such a command
 * never guesses which version was meant.
 */
export function versionPositionals(command: string, positionals: string[], usage: string): ModelRef {
  if (positionals.length === 2 && !positionals[0]!.includes('@')) {
    return { model: assertModelName(positionals[0]!), selector: 'version', version: parseVersionArg(positionals[1]!) };
  }
  if (positionals.length !== 1) throw usageError(`${command} needs one version: <model>@<version> (or @latest)\nusage: ${usage}`);
  const text = positionals[0]!;
  if (!text.includes('@')) {
    throw usageError(
      `${command} ${text}: a version is required; write ${text}@<version> or ${text}@latest (a bare model name does not pick one)\nusage: ${usage}`,
    );
  }
  if (text.endsWith('@latest')) return { model: assertModelName(text.slice(0, -'@latest'.length)), selector: 'latest' };
  return parseModelRef(text);
}

/** The version number a reference names, read from the snapshot the change is planned on. */
export async function versionNumber(snapshot: RegistrySnapshot, ref: ModelRef): Promise<number> {
  return ref.selector === 'version' ? ref.version : (await snapshot.resolveRef(ref)).version;
}
