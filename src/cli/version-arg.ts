import { usageError } from '../errors.js';
import { parseVersionArg } from '../promote/args.js';
import { assertModelName, parseModelRef, type ModelRef } from '../registry/layout.js';
import type { RegistrySnapshot } from '../registry/snapshot.js';

/**
 * The version a writing command acts on, from its positionals: `fraud@3`, `fraud@latest`,
 * `fraud@staging`, or the older two-word `fraud 3`. A bare model name is refused
 * (E_BARE_MODEL_REF): such a command never guesses which version was meant.
 */
export function versionPositionals(command: string, positionals: string[], usage: string): ModelRef {
  if (positionals.length === 2 && !positionals[0]!.includes('@')) {
    return { model: assertModelName(positionals[0]!), selector: 'version', version: parseVersionArg(positionals[1]!) };
  }
  if (positionals.length !== 1) throw usageError(`${command} needs one version: <model>@<N>, <model>@latest or <model>@<stage>\nusage: ${usage}`);
  return parseModelRef(positionals[0]!);
}

/** The version number a reference names, read from the snapshot the change is planned on. */
export async function versionNumber(snapshot: RegistrySnapshot, ref: ModelRef): Promise<number> {
  return ref.selector === 'version' ? ref.version : (await snapshot.resolveRef(ref)).version;
}
