import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { COMMAND_SPECS, usageOf } from '../cli/commands.js';
import { emit, parseCommandArgs, type Command } from '../cli/context.js';
import { ExitCode, ModelgateError, usageError } from '../errors.js';
import { runFromEnv } from '../lineage/ci.js';
import { codeFromWorkingDirectory, parseCodeSpec, type CodeLineage } from '../lineage/code.js';
import { parseDatasetSpec, resolveDataset } from '../lineage/dataset.js';
import { parseFramework, parseMetrics, parseParams } from '../lineage/values.js';
import { parseAnnotations, parseEnvSpec, parseRunSpec, parseSignatureFile } from '../lineage/flags.js';
import { FORMATS, type Artifact, type ArtifactFormat, type Lineage, type Model, type Stage } from '../manifest/types.js';
import { assertModelName, modelFile, parseStage, versionFile, versionsDir } from '../registry/layout.js';
import { assertValidModel, assertValidVersion, buildVersion, nextVersion, renderModel, renderVersion, type VersionDraft } from '../registry/new-version.js';
import { publish } from '../registry/publish.js';
import { openRegistry, type RegistrySnapshot } from '../registry/snapshot.js';
import { GitTreeSource, registryPrefix, type RegistrySource } from '../registry/source.js';
import { submitChange } from '../promote/submit.js';
import { parseRepository } from '../github/client.js';
import type { ChangePlan } from '../promote/plan.js';
import { hashFile, detectFormat, directoryDigest } from '../store/digest.js';
import { putArtifact, describeSource, type StoredArtifact } from '../store/put.js';
import { createProgress } from '../store/progress.js';
import { openStore } from '../store/store.js';
import { artifactUri, contentKey, parseStoreUri } from '../store/layout.js';
import type { GitRepo } from '../git/repo.js';

const USAGE = `modelgate ${usageOf('register')}`;

/** Initial stages a registration may choose; Production only through a reviewed promotion. */
const INITIAL_STAGES: readonly Stage[] = ['None', 'Staging'];

export const run: Command = async (ctx) => {
  const { values, positionals } = parseCommandArgs(ctx.argv, COMMAND_SPECS.register.flags, USAGE);
  if (positionals.length !== 2) throw usageError(`register needs <model> and <file-or-dir>\nusage: ${USAGE}`);
  const model = assertModelName(positionals[0]!);
  const localPath = resolve(ctx.cwd, positionals[1]!);
  if (values.push && values.pr) throw usageError('--push and --pr exclude each other');

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
  const runSpec = values.run === undefined ? undefined : parseRunSpec(values.run);
  const envSpec = values.env === undefined ? undefined : parseEnvSpec(values.env);
  const signature = values.signature === undefined ? undefined : parseSignatureFile(values.signature, read(values.signature));
  const annotations = parseAnnotations(values.annotation ?? []);
  const codeSpec = values.code === undefined || values.code === 'auto' ? undefined : parseCodeSpec(values.code);
  const source = await describeSource(localPath);

  const { repo, snapshot } = openRegistry(ctx);
  const config = await snapshot.config();
  if (values.pr && !values['dry-run']) {
    // What the pull request needs is checked before the upload, not after.
    if (!(ctx.env.GITHUB_TOKEN || ctx.env.GH_TOKEN)) throw usageError('--pr needs a GitHub token: set GITHUB_TOKEN (or GH_TOKEN)');
    if (!config.github?.repository) throw new ModelgateError('E_NO_GITHUB', '--pr needs the GitHub repository: set github.repository in modelgate.yaml', ExitCode.content);
    parseRepository(config.github.repository);
  }

  const lineage: Lineage = {};
  const code: CodeLineage | undefined = values.code === 'auto' ? await codeFromWorkingDirectory(ctx.cwd) : codeSpec;
  if (code) lineage.code = code;
  if (datasets.length) lineage.data = await Promise.all(datasets.map((d) => resolveDataset(d, (p) => resolve(ctx.cwd, p))));
  const ci = runSpec ?? runFromEnv(ctx.env);
  if (ci) lineage.run = ci;
  if (envSpec) lineage.environment = envSpec;

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
      const known = await knownArtifacts(snapshot, model, source.size);
      artifact = await putArtifact(store, model, localPath, { onBytes: (n) => progress.add(n), known });
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
    ...(signature ? { signature } : {}),
    ...(Object.keys(lineage).length ? { lineage } : {}),
    ...(Object.keys(annotations).length ? { annotations } : {}),
  };

  // Outside git (possible with --dry-run) the prefix is ''.
  const prefix = await registryPrefix(repo);
  const at = (commit: string | undefined) => (commit ? new GitTreeSource(repo, commit, prefix) : undefined);
  const inRepo = (files: Record<string, string>) => Object.fromEntries(Object.entries(files).map(([p, text]) => [prefix ? `${prefix}/${p}` : p, text]));
  const message = (version: number) => `register ${model}@${version}\n\nartifact ${artifact.uri}\nsha256 ${artifact.sha256}\n`;
  const registered = (version: number, landed: { commit?: string; pushed: boolean }) => ({
    model,
    version,
    ref: `${model}@${version}`,
    uri: artifact.uri,
    sha256: artifact.sha256,
    size: artifact.size,
    reused: artifact.reused,
    commit: landed.commit,
    pushed: landed.pushed,
  });

  if (values['dry-run']) {
    const planned = await planRegistration(at(await repo.resolve('HEAD')), draft);
    const branch = values.pr ? registrationBranch(model, planned.version) : undefined;
    emit(ctx, { dryRun: true, model, version: planned.version, files: planned.files, ...(branch ? { branch } : {}) }, () =>
      [...(branch ? [`# would push ${branch} and open a pull request`] : []), ...Object.entries(planned.files).map(([path, text]) => `# would write ${path}\n${text}`)].join('\n'));
    return ExitCode.ok;
  }

  if (values.pr) {
    const pending = await pendingRegistrations(repo, model);
    const done = await submitChange({
      repo,
      prefix,
      mode: 'pr',
      env: ctx.env,
      newBranch: true,
      plan: async (snapshot) => registrationChange(await planRegistration(snapshot.source, draft, pending), draft, message),
    });
    const version = done.plan.versions[0]!.version;
    const pr = done.pullRequest!;
    emit(ctx, {
      ...registered(version, done),
      branch: done.plan.branch,
      pullRequest: pr,
      gate: done.decision?.decision,
    }, () => `${model}@${version}\npull request #${pr.number} ${pr.created ? 'opened' : 'updated'}: ${pr.url}`);
    return ExitCode.ok;
  }

  let version = 0;
  const published = await publish({
    repo,
    push: values.push,
    plan: async (base) => {
      const planned = await planRegistration(at(base), draft);
      version = planned.version;
      return { files: inRepo(planned.files), message: message(version) };
    },
  });
  emit(ctx, registered(version, published), () => `${model}@${version}`);
  if (!published.checkedOut && !ctx.quiet) ctx.stderr(`modelgate: pushed ${published.commit.slice(0, 12)}, but the local branch has diverged and was not updated\n`);
  return ExitCode.ok;
};

/**
 * The files a registration adds to `source` (a commit of the registry; undefined before the
 * first commit): the next version's manifest (and the model's model.yaml when the model is new),
 * checked by the loader before anything is committed. Numbers in `taken` (held by open
 * registration pull requests) are skipped.
 */
export async function planRegistration(
  source: RegistrySource | undefined,
  draft: VersionDraft,
  taken: ReadonlySet<number> = new Set(),
): Promise<{ version: number; files: Record<string, string>; newModel: boolean }> {
  const names = source ? await source.listDir(versionsDir(draft.model)) : [];
  const numbers = names.map((n) => /^([1-9][0-9]{0,8})\.yaml$/.exec(n)?.[1]).filter((n): n is string => n !== undefined).map(Number);
  let version = nextVersion(numbers);
  while (taken.has(version)) version++;
  const text = renderVersion(buildVersion(draft, version));
  assertValidVersion(text, draft.model, version);
  const files: Record<string, string> = { [versionFile(draft.model, version)]: text };
  const newModel = !(source && (await source.readFile(modelFile(draft.model))) !== undefined);
  if (newModel) {
    const m: Model = { apiVersion: 'modelgate.dev/v1', kind: 'Model', name: draft.model };
    const modelText = renderModel(m);
    assertValidModel(modelText, draft.model);
    files[modelFile(draft.model)] = modelText;
  }
  return { version, files, newModel };
}

/** `modelgate/<model>-v<version>-register`: the branch of a registration pull request. */
export function registrationBranch(model: string, version: number): string {
  return `modelgate/${model}-v${version}-register`;
}

/** A planned registration as a change for a pull request: the new files and the version the body describes. */
export function registrationChange(
  planned: { version: number; files: Record<string, string>; newModel: boolean },
  draft: VersionDraft,
  message: (version: number) => string,
): ChangePlan {
  const { version } = planned;
  const summary = `Register ${draft.model}@${version}${draft.stage === 'None' ? '' : ` in ${draft.stage}`}`;
  return {
    summary,
    changes: [...(planned.newModel ? [`${draft.model}: new model`] : []), `${draft.model}@${version}: new version in ${draft.stage}`],
    edits: Object.entries(planned.files).map(([path, after]) => ({ path, before: '', after })),
    versions: [buildVersion(draft, version)],
    branch: registrationBranch(draft.model, version),
    message: message(version),
  };
}

/**
 * Version numbers of `model` that open registration branches on the remote already hold:
 * concurrent `register --pr` runs get distinct numbers instead of fighting over one branch.
 */
async function pendingRegistrations(repo: GitRepo, model: string, remote = 'origin'): Promise<Set<number>> {
  const r = await repo.run(['ls-remote', '--heads', remote, `refs/heads/modelgate/${model}-v*-register`], { okCodes: [1, 2, 128] });
  if (r.code !== 0) return new Set();
  const pattern = new RegExp(`\trefs/heads/modelgate/${model}-v([1-9][0-9]{0,8})-register$`);
  return new Set(r.stdout.split('\n').map((line) => pattern.exec(line)?.[1]).filter((n): n is string => n !== undefined).map(Number));
}

/**
 * Artifacts already recorded for `model` with a total size of `size`: the candidates for
 * registering the same bytes again without uploading them. Manifest texts are filtered for the
 * number before any is parsed, and a manifest that does not load is just not a candidate.
 */
async function knownArtifacts(snapshot: RegistrySnapshot, model: string, size: number): Promise<Artifact[]> {
  const numbers = await snapshot.versionNumbers(model);
  const paths = numbers.map((n) => versionFile(model, n));
  const texts = snapshot.source.readFiles ? await snapshot.source.readFiles(paths) : await Promise.all(paths.map((p) => snapshot.source.readFile(p)));
  const mentions = new RegExp(`size"?\\s*:\\s*${size}(?![0-9.])`);
  const out: Artifact[] = [];
  for (const [i, text] of texts.entries()) {
    if (text === undefined || !mentions.test(text)) continue;
    const v = await snapshot.version(model, numbers[i]!).catch(() => undefined);
    if (v?.artifact.size === size) out.push(v.artifact);
  }
  return out;
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

