import { emit, parseCommand, type Command } from '../cli/context.js';
import { ExitCode, ModelgateError, usageError } from '../errors.js';
import type { ArtifactFile, ModelVersion, Registry } from '../manifest/types.js';
import { parseModelRef } from '../registry/layout.js';
import { openReadRegistry } from '../registry/snapshot.js';
import { MAX_PRESIGN_SECONDS, presignGet } from '../store/store.js';

/** What serving needs to fetch and verify an artifact. */
export interface ResolvedArtifact {
  model: string;
  version: number;
  stage: string;
  uri: string;
  sha256: string;
  size: number;
  files?: ArtifactFile[];
  url?: string;
  expiresIn?: number;
}

/**
 * Produces a time-limited GET URL for the artifact through the registry's store (S3 only;
 * the file:// store answers with exit 2). A directory artifact has no single object to sign.
 */
async function presign(config: Registry, version: ModelVersion, seconds: number, env: NodeJS.ProcessEnv): Promise<string> {
  if (version.artifact.files) {
    throw new ModelgateError(
      'E_PRESIGN_DIRECTORY',
      `${version.model}@${version.version} is a directory artifact: presigned URLs are per object; use modelgate pull`,
      ExitCode.usage,
    );
  }
  return presignGet(config.storage, version.artifact.uri, seconds, env);
}

/** `modelgate resolve`: uri, sha256 and size of a version's artifact. */
export const run: Command = async (ctx) => {
  const { values, positionals, misuse } = parseCommand('resolve', ctx.argv);
  if (positionals.length !== 1) throw misuse('expected one reference (fraud@3, fraud@latest, fraud@production, fraud@champion)');
  const ref = parseModelRef(positionals[0]!);
  let seconds: number | undefined;
  if (values.presign !== undefined) {
    seconds = /^[1-9][0-9]*$/.test(values.presign) ? Number(values.presign) : NaN;
    if (!(seconds >= 1 && seconds <= MAX_PRESIGN_SECONDS))
      throw usageError(`--presign ${values.presign}: expected a number of seconds from 1 to ${MAX_PRESIGN_SECONDS}`);
  }
  const { snapshot } = await openReadRegistry(ctx);
  const v = await snapshot.resolveRef(ref);
  const resolved: ResolvedArtifact = {
    model: v.model,
    version: v.version,
    stage: v.stage,
    uri: v.artifact.uri,
    sha256: v.artifact.sha256,
    size: v.artifact.size,
  };
  if (v.artifact.files) resolved.files = v.artifact.files;
  if (seconds !== undefined) {
    resolved.url = await presign(await snapshot.config(), v, seconds, ctx.env);
    resolved.expiresIn = seconds;
  }
  emit(ctx, resolved, () => {
    const lines = [`model    ${v.model}@${v.version} (${v.stage})`, `uri      ${resolved.uri}`, `sha256   ${resolved.sha256}`, `size     ${resolved.size}`];
    for (const f of resolved.files ?? []) lines.push(`file     ${f.path}  ${f.size}  ${f.sha256}`);
    if (resolved.url) lines.push(`url      ${resolved.url}`, `expires  in ${resolved.expiresIn} s`);
    return lines.join('\n');
  });
  return 0;
};
