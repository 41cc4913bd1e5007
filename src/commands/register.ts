import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { emit, parseCommandArgs, type Command } from '../cli/context.js';
import { ExitCode, ModelgateError, usageError } from '../errors.js';
import { runFromEnv } from '../lineage/ci.js';
import { codeFromWorkingDirectory, parseCodeSpec, type CodeLineage } from '../lineage/code.js';
import { parseDatasetSpec, resolveDataset } from '../lineage/dataset.js';
import { parseFramework, parseMetrics, parseParams } from '../lineage/values.js';
import { FORMATS, type ArtifactFormat, type Lineage, type Model, type Stage } from '../manifest/types.js';
import { assertModelName, modelFile, parseStage, versionFile, versionsDir } from '../registry/layout.js';
import { assertValidModel, assertValidVersion, buildVersion, nextVersion, renderModel, renderVersion, type VersionDraft } from '../registry/new-version.js';
import { publish } from '../registry/publish.js';
import { openRegistry } from '../registry/snapshot.js';
import { GitTreeSource } from '../registry/source.js';
import { hashFile, detectFormat, directoryDigest } from '../store/digest.js';
import { putArtifact, describeSource, type StoredArtifact } from '../store/put.js';
import { createProgress } from '../store/progress.js';
import { openStore } from '../store/store.js';
import { artifactUri, contentKey, parseStoreUri } from '../store/layout.js';
import type { GitRepo } from '../git/repo.js';

const USAGE =
  'register <model> <file-or-dir> [--metrics f.json | --metric k=v…] [--params f.json | --param k=v…] [--stage None|Staging] ' +
  '[--description text] [--format f] [--framework name==version] [--code auto|<repo>@<commit>] [--dataset id=…,uri=…[,path=file]]… [--push | --pr] [--dry-run]';

const OPTIONS = {
  metrics: { type: 'string', multiple: true },
  metric: { type: 'string', multiple: true },
  params: { type: 'string', multiple: true },
  param: { type: 'string', multiple: true },
  stage: { type: 'string' },
  description: { type: 'string' },
  format: { type: 'string' },
  framework: { type: 'string' },
  code: { type: 'string' },
  dataset: { type: 'string', multiple: true },
  push: { type: 'boolean' },
  pr: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
} as const;

/** Initial stages a registration may choose; Production only through a reviewed promotion. */
const INITIAL_STAGES: readonly Stage[] = ['None', 'Staging'];

export const run: Command = async (ctx) => {
  const { values, positionals } = parseCommandArgs(ctx.argv, OPTIONS, USAGE);
  if (positionals.length !== 2) throw usageError(`register needs <model> and <file-or-dir>\nusage: ${USAGE}`);
  const model = assertModelName(positionals[0]!);
  const localPath = resolve(ctx.cwd, positionals[1]!);
  if (values.push && values.pr) throw usageError('--push and --pr exclude each other');
  if (values.pr) throw new ModelgateError('E_NOT_READY', 'register --pr arrives with promotion pull requests; use --push or commit locally', ExitCode.usage);

  // Everything the command line can get wrong is checked before a byte is read.
  const stage = values.stage === undefined ? 'None' : parseStage(values.stage);
  if (!stage || !INITIAL_STAGES.includes(stage)) throw usageError(`--stage ${values.stage}: a new version starts in None or Staging`);
  if (values.format !== undefined && !(FORMATS as readonly string[]).includes(values.format)) {
    throw usageError(`--format ${values.format}: one of ${FORMATS.join(', ')}`);
  }
  const read = (p: string) => readFileSync(resolve(ctx.cwd, p), 'utf8');
  const metrics = parseMetrics([...(values.metrics ?? []), ...(values.metric ?? [])], read);
  const parameters = parseParams([...(values.params ?? []), ...(values.param ?? [])], read);
  const framework = values.framework !== undefined ? parseFramework(values.framework) : undefined;
  const datasets = (values.dataset ?? []).map(parseDatasetSpec);
  const codeSpec = values.code === undefined || values.code === 'auto' ? undefined : parseCodeSpec(values.code);
  const source = await describeSource(localPath);

  const { repo, snapshot } = openRegistry(ctx);
  const config = await snapshot.config();

  const lineage: Lineage = {};
  const code: CodeLineage | undefined = values.code === 'auto' ? await codeFromWorkingDirectory(ctx.cwd) : codeSpec;
  if (code) lineage.code = code;
  if (datasets.length) lineage.data = await Promise.all(datasets.map((d) => resolveDataset(d, (p) => resolve(ctx.cwd, p))));
  const ci = runFromEnv(ctx.env);
  if (ci) lineage.run = ci;

  const format: ArtifactFormat = (values.format as ArtifactFormat | undefined) ??
    detectFormat(source.kind === 'file' ? [source.name] : source.files.map((f) => f.path), source.kind === 'directory');

  const progress = createProgress(ctx, `uploading ${positionals[1]}`, source.size);
  let artifact: StoredArtifact;
  if (values['dry-run']) {
    artifact = await hashOnly(config.storage.uri, model, localPath, source, (n) => progress.add(n));
  } else {
    const store = await openStore(config.storage, ctx.env);
    try {
      await store.preflight();
      artifact = await putArtifact(store, model, localPath, { onBytes: (n) => progress.add(n) });
    } finally {
      store.close();
    }
  }
  progress.done();

  const draft: VersionDraft = {
    model,
    stage,
    createdAt: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    createdBy: (await repo.identity())?.name ?? ctx.env.USER ?? ctx.env.USERNAME ?? 'unknown',
    ...(values.description ? { description: values.description } : {}),
    artifact: { uri: artifact.uri, sha256: artifact.sha256, size: artifact.size, ...(artifact.files ? { files: artifact.files } : {}) },
    format,
    ...(framework ? { framework } : {}),
    ...(Object.keys(metrics).length ? { metrics } : {}),
    ...(Object.keys(parameters).length ? { parameters } : {}),
    ...(Object.keys(lineage).length ? { lineage } : {}),
  };

  if (values['dry-run']) {
    const base = await repo.resolve('HEAD');
    const planned = await planRegistration(repo, base, draft);
    emit(ctx, { dryRun: true, model, version: planned.version, files: planned.files }, () =>
      Object.entries(planned.files).map(([path, text]) => `# would write ${path}\n${text}`).join('\n'));
    return ExitCode.ok;
  }

  let version = 0;
  const published = await publish({
    repo,
    push: values.push,
    plan: async (base) => {
      const planned = await planRegistration(repo, base, draft);
      version = planned.version;
      return { files: planned.files, message: `register ${model}@${version}\n\nartifact ${artifact.uri}\nsha256 ${artifact.sha256}\n` };
    },
  });
  emit(ctx, {
    model,
    version,
    ref: `${model}@${version}`,
    uri: artifact.uri,
    sha256: artifact.sha256,
    size: artifact.size,
    reused: artifact.reused,
    commit: published.commit,
    pushed: published.pushed,
  }, () => `${model}@${version}`);
  if (!published.checkedOut && !ctx.quiet) ctx.stderr(`modelgate: pushed ${published.commit.slice(0, 12)}, but the local branch has diverged and was not updated\n`);
  return ExitCode.ok;
};

/**
 * The files a registration adds at `base`: the next version's manifest (and the model's
 * model.yaml when the model is new), checked by the loader before anything is committed.
 */
export async function planRegistration(repo: GitRepo, base: string | undefined, draft: VersionDraft): Promise<{ version: number; files: Record<string, string> }> {
  const source = base ? new GitTreeSource(repo, base) : undefined;
  const names = source ? await source.listDir(versionsDir(draft.model)) : [];
  const numbers = names.map((n) => /^([1-9][0-9]{0,8})\.yaml$/.exec(n)?.[1]).filter((n): n is string => n !== undefined).map(Number);
  const version = nextVersion(numbers);
  const text = renderVersion(buildVersion(draft, version));
  assertValidVersion(text, draft.model, version);
  const files: Record<string, string> = { [versionFile(draft.model, version)]: text };
  if (!(source && (await source.readFile(modelFile(draft.model))) !== undefined)) {
    const m: Model = { apiVersion: 'modelgate.dev/v1', kind: 'Model', name: draft.model };
    const modelText = renderModel(m);
    assertValidModel(modelText, draft.model);
    files[modelFile(draft.model)] = modelText;
  }
  return { version, files };
}

/** --dry-run: the digest and the URI the artifact would get, without writing to the store. */
async function hashOnly(
  storeUri: string,
  model: string,
  localPath: string,
  source: Awaited<ReturnType<typeof describeSource>>,
  onBytes: (n: number) => void,
): Promise<StoredArtifact> {
  const location = parseStoreUri(storeUri);
  if (source.kind === 'file') {
    const { sha256, size } = await hashFile(localPath, onBytes);
    return { uri: artifactUri(location, contentKey(model, sha256, source.name)), sha256, size, reused: false };
  }
  const files = [];
  for (const f of source.files) files.push({ path: f.path, ...(await hashFile(f.absolute, onBytes)) });
  const digest = directoryDigest(files);
  return { uri: artifactUri(location, contentKey(model, digest, '')), sha256: digest, size: files.reduce((n, f) => n + f.size, 0), files, reused: false };
}

