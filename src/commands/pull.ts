import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { COMMAND_SPECS, usageOf } from '../cli/commands.js';
import { emit, parseCommandArgs, type Command } from '../cli/context.js';
import { ExitCode, ModelgateError, usageError } from '../errors.js';
import { parseModelRef } from '../registry/layout.js';
import { openRegistry } from '../registry/snapshot.js';
import { downloadArtifact } from '../store/fetch.js';
import { createProgress } from '../store/progress.js';
import { openStore } from '../store/store.js';

const USAGE = `modelgate ${usageOf('pull')}`;

/** `modelgate pull`: a version's artifact to a local path, placed there only once every sha256 matched. */
export const run: Command = async (ctx) => {
  const { values, positionals } = parseCommandArgs(ctx.argv, COMMAND_SPECS.pull.flags, USAGE);
  if (positionals.length !== 1 || !values.output) throw usageError(`pull needs <ref> and -o <path>\nusage: ${USAGE}`);
  const ref = parseModelRef(positionals[0]!);
  const target = resolve(ctx.cwd, values.output);
  if (existsSync(target) && !values.force) {
    throw new ModelgateError('E_OUTPUT_EXISTS', `${values.output} already exists; pass --force to replace it`, ExitCode.usage);
  }
  const { snapshot } = openRegistry(ctx);
  const version = await snapshot.resolveRef(ref);
  const store = await openStore((await snapshot.config()).storage, ctx.env);
  const progress = createProgress(ctx, `pulling ${version.model}@${version.version}`, version.artifact.size);
  try {
    await downloadArtifact(store, version.artifact, target, { replace: values.force, onBytes: (n) => progress.add(n) });
  } finally {
    store.close();
  }
  progress.done();
  emit(ctx, { model: version.model, version: version.version, path: target, sha256: version.artifact.sha256, size: version.artifact.size }, () =>
    `${version.model}@${version.version} → ${values.output} (sha256 ${version.artifact.sha256} verified)`);
  return ExitCode.ok;
};
