import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { onCancel } from '../cancel.js';
import { emit, parseCommand, type Command } from '../cli/context.js';
import { ExitCode, ModelgateError, usageError } from '../errors.js';
import { runFromEnv } from '../lineage/ci.js';
import { codeFromWorkingDirectory, parseCodeSpec, type CodeLineage } from '../lineage/code.js';
import { parseDatasetSpec, resolveDataset } from '../lineage/dataset.js';
import { parseFramework, parseMetrics, parseParams } from '../lineage/values.js';
import { readInputText } from '../lineage/input-file.js';
import { parseAnnotations, parseEnvSpec, parseRunSpec, parseSignatureFile } from '../lineage/flags.js';
import { mlflowEnvironment, readMLflowFolder, type MLflowFolder } from '../lineage/mlflow.js';
import { FORMATS, type Artifact, type ArtifactFormat, type Lineage, type Model, type PromotionPolicy, type Registry, type Stage } from '../manifest/types.js';
import { findingText, scanRequiredOnRegistration } from '../gate/scan-check.js';
import { scanLocalPath } from '../scan/local.js';
import { assertModelName, modelFile, parseStage, versionFile, versionsDir } from '../registry/layout.js';
import { assertValidModel, assertValidVersion, buildVersion, nextVersion, renderModel, renderVersion, type VersionDraft } from '../registry/new-version.js';
import { openRegistry, RegistrySnapshot } from '../registry/snapshot.js';
import { GitTreeSource, registryPrefix, type RegistrySource } from '../registry/source.js';
import { applyChange } from '../promote/apply-change.js';
import { branchName, changeDiff, registeredOnBranches, withPins, type Change } from '../promote/change.js';
import { modeOf } from '../promote/command.js';
import { completeChange } from '../promote/pins.js';
import { parseRepository } from '../github/client.js';
import type { ChangePlan } from '../promote/plan.js';
import { hashFile, detectFormat, directoryDigest } from '../store/digest.js';
import { putArtifact, describeSource, hashDirectory, type StoredArtifact } from '../store/put.js';
import { indexedArtifact, INDEX_THRESHOLD } from '../store/dir-index.js';
import { createProgress } from '../store/progress.js';
import { openStore } from '../store/store.js';
import { artifactUri, assertRelativePath, contentKey, parseStoreUri, registrationMarkKey } from '../store/layout.js';
import type { GitRepo } from '../git/repo.js';

/** Initial stages a registration may choose; Production only through a reviewed promotion. */
const INITIAL_STAGES: readonly Stage[] = ['None', 'Staging'];

export const run: Command = async (ctx) => {
  const { values, positionals, misuse } = parseCommand('register', ctx.argv);
  if (positionals.length !== 2) throw misuse('register needs <model> and <file-or-dir>');
  const model = assertModelName(positionals[0]!);
  const localPath = resolve(ctx.cwd, positionals[1]!);
  if (values.push && values.pr) throw usageError('--push and --pr exclude each other');

  // Everything the command line can get wrong is checked before a byte is read.
  const stage = values.stage === undefined ? 'None' : parseStage(values.stage);
  if (!stage || !INITIAL_STAGES.includes(stage)) throw usageError(`--stage ${values.stage}: a new version starts in None or Staging`);
  if (values.format !== undefined && !(FORMATS as readonly string[]).includes(values.format)) {
    throw usageError(`--format ${values.format}: one of ${FORMATS.join(', ')}`);
  }
  const read = (p: string) => readInputText(resolve(ctx.cwd, p), p);
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
  // What the pull request needs is checked before the upload, not after.
  if (values.pr && !values['dry-run']) checkPullRequestSetup(ctx.env, config);

  const format: ArtifactFormat =
    (values.format as ArtifactFormat | undefined) ??
    detectFormat(source.kind === 'file' ? [source.name] : source.files.map((f) => f.path), source.kind === 'directory');
  // An MLflow folder describes itself: flavors, run, signature and environment come from its
  // MLmodel; what the command line says wins.
  const mlflow = format === 'mlflow' && source.kind === 'directory' ? await localMLflowFolder(positionals[1]!, source.files) : undefined;

  const lineage: Lineage = {};
  const code: CodeLineage | undefined = values.code === 'auto' ? await codeFromWorkingDirectory(ctx.cwd) : codeSpec;
  if (code) lineage.code = code;
  if (datasets.length) lineage.data = await Promise.all(datasets.map((d) => resolveDataset(d, (p) => resolve(ctx.cwd, p))));
  const ci = runSpec ?? mlflow?.model.run ?? runFromEnv(ctx.env);
  if (ci) lineage.run = ci;
  const frameworkOf = framework ?? mlflow?.model.framework;
  const signatureOf = signature ?? mlflow?.model.signature;
  // The environment files' digests are the artifact's own (placeholders before the upload).
  const lineageFor = (artifact: Artifact): Lineage => {
    const environment = mlflowEnvironment(mlflow, new Map((artifact.files ?? []).map((f) => [f.path, f.sha256])), envSpec);
    return { ...lineage, ...(environment ? { environment } : {}) };
  };

  // Check first (SPEC v2 §4): the manifest this run will write is built and validated with a
  // placeholder digest (same length as the real one) before any byte is read or sent, and so is
  // the local repository the commit lands in; every refusal of input comes before the upload.
  const createdBy = (await repo.identity())?.name;
  const draftFor = (artifact: Artifact): VersionDraft => ({
    model,
    stage,
    createdAt: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    // The registrant, whoever the commit is made as (a CI runner has no git identity).
    createdBy: createdBy ?? ctx.env.GITHUB_ACTOR ?? ctx.env.USER ?? ctx.env.USERNAME ?? 'unknown',
    ...(values.description ? { description: values.description } : {}),
    artifact,
    format,
    ...(frameworkOf ? { framework: frameworkOf } : {}),
    ...(Object.keys(metrics).length ? { metrics } : {}),
    ...(Object.keys(parameters).length ? { parameters } : {}),
    ...(signatureOf ? { signature: signatureOf } : {}),
    ...(Object.keys(lineageFor(artifact)).length ? { lineage: lineageFor(artifact) } : {}),
    ...(Object.keys(annotations).length ? { annotations } : {}),
  });
  const prefix = await registryPrefix(repo);
  const at = (commit: string | undefined) => (commit ? new GitTreeSource(repo, commit, prefix) : undefined);
  const headSource = at(await repo.resolve('HEAD'));
  const placeholder = draftFor(placeholderArtifact(config.storage.uri, model, source));
  const planned = await planRegistration(headSource, placeholder);
  // The pins it moves (a version entering Staging) are rendered too: a pin KServe could not load
  // (a lone .safetensors as huggingface, file:// without storage.pvc) is refused before the upload.
  if (headSource)
    await completeChange(
      headSource,
      registrationChange(planned, placeholder, () => ''),
    );
  if (!values['dry-run']) await checkRepository(repo, { remote: Boolean(values.push || values.pr) });
  await scanBeforeUpload(ctx, localPath, model, stage, format, await snapshot.policy());

  const progress = createProgress(ctx, `uploading ${positionals[1]}`, source.size);
  let artifact: StoredArtifact;
  if (values['dry-run']) {
    artifact = await hashOnly(config.storage.uri, model, localPath, source, (n) => progress.add(n));
  } else {
    const store = await openStore(config.storage, ctx.env);
    // Ctrl-C or SIGTERM during the upload: abort the multipart uploads, remove the staging data,
    // then exit 130 / 143 (SPEC v2 §5, src/cancel.ts). What a kill -9 leaves is for `gc`.
    const uploadId = randomUUID();
    // The registration mark (SPEC v3 §14): gc keeps these bytes, reused or new, for --older-than,
    // and knows them as an upload whose manifest never came if this run dies before its commit.
    let marked: string | undefined;
    const mark = async (sha256: string) => {
      marked = registrationMarkKey(model, sha256, uploadId);
      await store.touch(marked);
    };
    const unmark = () => (marked ? store.remove(marked).catch(() => {}) : Promise.resolve());
    const off = onCancel(() => store.abandon(model, uploadId).then(unmark));
    try {
      await store.preflight();
      const known = await knownArtifacts(snapshot, model, source.size);
      artifact = await putArtifact(store, model, localPath, { onBytes: (n) => progress.add(n), known, uploadId, mark }).catch(async (e: unknown) => {
        await unmark();
        throw e;
      });
    } finally {
      off();
      store.close();
    }
  }
  progress.done();

  const draft = draftFor({
    uri: artifact.uri,
    sha256: artifact.sha256,
    size: artifact.size,
    ...(artifact.files ? { files: artifact.files } : {}),
    ...(artifact.index ? { index: artifact.index } : {}),
  });
  const mode = modeOf(values);
  const message = (version: number) => `register ${model}@${version}\n\nartifact ${artifact.uri}\nsha256 ${artifact.sha256}\n`;
  // One planner for every mode: the next number past main and past open registration branches.
  const plan = async (snap: RegistrySnapshot | undefined): Promise<Change> => {
    const taken = mode === 'local' ? new Set<number>() : await numbersOnBranches(repo, 'origin', model);
    const manifest = registrationChange(await planRegistration(snap?.source, draft, taken), draft, message);
    return snap ? completeChange(snap.source, manifest) : withPins(manifest, { files: [], changes: [] });
  };
  const registered = (change: Change, landed: { commit?: string; pushed: boolean }) => ({
    model,
    version: change.versions[0]!.version,
    ref: `${model}@${change.versions[0]!.version}`,
    uri: artifact.uri,
    sha256: artifact.sha256,
    size: artifact.size,
    reused: artifact.reused,
    commit: landed.commit,
    pushed: landed.pushed,
    files: change.files.map((f) => f.path),
  });

  if (values['dry-run']) {
    const head = await repo.resolve('HEAD');
    const change = await plan(head ? new RegistrySnapshot(new GitTreeSource(repo, head, prefix)) : undefined);
    const diff = changeDiff(change);
    const version = change.versions[0]!.version;
    emit(ctx, { dryRun: true, model, version, mode, files: change.files.map((f) => f.path), diff, ...(mode === 'pr' ? { branch: change.branch } : {}) }, () =>
      [
        ...(mode === 'pr' ? [`# would push ${change.branch} and open a pull request`] : []),
        ...change.files.map((f) => `# would write ${f.path}`),
        diff.trimEnd(),
      ].join('\n'),
    );
    return ExitCode.ok;
  }

  // The bytes are uploaded: from here nothing may fail for want of a git identity or a free number.
  const done = await applyChange({ repo, prefix, mode, env: ctx.env, newBranch: mode === 'pr', claimBranch: true, plan });
  const version = done.change.versions[0]!.version;
  if (mode === 'pr') {
    const pr = done.pullRequest!;
    emit(
      ctx,
      { ...registered(done.change, done), branch: done.change.branch, pullRequest: pr, gate: done.decision?.decision },
      () => `${model}@${version}\npull request #${pr.number} ${pr.created ? 'opened' : 'updated'}: ${pr.url}`,
    );
    return ExitCode.ok;
  }
  emit(ctx, registered(done.change, done), () => `${model}@${version}`);
  if (!done.checkedOut && !ctx.quiet) ctx.stderr(`modelgate: pushed ${done.commit?.slice(0, 12)}, but the local branch has diverged and was not updated\n`);
  return ExitCode.ok;
};

/** What `--pr` needs before anything moves: a GitHub token and the registry's GitHub repository. */
export function checkPullRequestSetup(env: NodeJS.ProcessEnv, config: Registry): void {
  if (!(env.GITHUB_TOKEN || env.GH_TOKEN)) throw usageError('--pr needs a GitHub token: set GITHUB_TOKEN (or GH_TOKEN)');
  if (!config.github?.repository)
    throw new ModelgateError('E_NO_GITHUB', '--pr needs the GitHub repository: set github.repository in modelgate.yaml', ExitCode.content);
  parseRepository(config.github.repository);
}

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
  const version = await freeVersion(source, draft.model, taken);
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

/** The number a new version of `model` takes on `source`: past every number there, skipping those in `taken`. */
export async function freeVersion(source: RegistrySource | undefined, model: string, taken: ReadonlySet<number>): Promise<number> {
  const names = source ? await source.listDir(versionsDir(model)) : [];
  const numbers = names
    .map((n) => /^([1-9][0-9]{0,8})\.yaml$/.exec(n)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number);
  let version = nextVersion(numbers);
  while (taken.has(version)) version++;
  return version;
}

/** The numbers of `model` that open registration branches of `remote` hold (`modelgate/<model>-v<N>-register`). */
export async function numbersOnBranches(repo: GitRepo, remote: string, model: string): Promise<Set<number>> {
  return new Set(registeredOnBranches(await repo.remoteBranches(remote, 'modelgate/*'), model));
}

/** `modelgate/<model>-v<version>-register`: the branch of a registration pull request. */
export function registrationBranch(model: string, version: number): string {
  return branchName({ kind: 'register', model, version });
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
    kind: 'register',
    summary,
    changes: [...(planned.newModel ? [`${draft.model}: new model`] : []), `${draft.model}@${version}: new version in ${draft.stage}`],
    edits: Object.entries(planned.files).map(([path, after]) => ({ path, before: '', after })),
    versions: [buildVersion(draft, version)],
    branch: registrationBranch(draft.model, version),
    message: message(version),
  };
}

/**
 * The MLmodel at the top of a local MLflow folder (`shown` is the folder as the user named it,
 * for messages), read before anything is uploaded; undefined when the folder has none there.
 */
export async function localMLflowFolder(
  shown: string,
  files: ReadonlyArray<{ path: string; absolute: string; size: number }>,
): Promise<MLflowFolder | undefined> {
  const file = files.find((f) => f.path === 'MLmodel');
  if (!file) return undefined;
  const name = `${shown.replace(/(?<!\/)\/+$/, '')}/MLmodel`;
  return readMLflowFolder(name, file.size, () => readFile(file.absolute, 'utf8'), new Set(files.map((f) => f.path)));
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

const PLACEHOLDER_SHA256 = '0'.repeat(64);

/** The artifact section the manifest will hold, with a placeholder digest: for checking before the upload. */
function placeholderArtifact(storeUri: string, model: string, source: Awaited<ReturnType<typeof describeSource>>): Artifact {
  const location = parseStoreUri(storeUri);
  if (source.kind === 'file')
    return { uri: artifactUri(location, contentKey(model, PLACEHOLDER_SHA256, source.name)), sha256: PLACEHOLDER_SHA256, size: source.size };
  if (source.files.length > INDEX_THRESHOLD) return indexedArtifact(location, model, PLACEHOLDER_SHA256, source.size, source.files.length);
  const files = source.files.map((f) => ({ path: assertRelativePath(f.path), sha256: PLACEHOLDER_SHA256, size: f.size }));
  return { uri: artifactUri(location, contentKey(model, PLACEHOLDER_SHA256, '')), sha256: PLACEHOLDER_SHA256, size: source.size, files };
}

/**
 * What would make the commit fail after the upload, checked before it: a lock left by a crashed
 * git (`index.lock`, refused by the fast-forward of the checkout), no committer identity, and
 * with --push/--pr a remote that does not answer.
 */
async function checkRepository(repo: GitRepo, want: { remote: boolean }): Promise<void> {
  const lock = await repo.gitPath('index.lock');
  if (lock && existsSync(resolve(repo.dir, lock))) {
    throw new ModelgateError(
      'E_GIT_LOCKED',
      `${lock} exists: another git process is running, or one crashed; remove the file if none is running`,
      ExitCode.content,
      { path: lock },
    );
  }
  // No identity is no refusal: the commit is made as the CI actor or as modelgate (commitIdentity).
  if (want.remote) await repo.probeRemote('origin');
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
  const files = await hashDirectory(source.files, onBytes);
  const digest = directoryDigest(files);
  if (files.length > INDEX_THRESHOLD) {
    const indexed = indexedArtifact(
      location,
      model,
      digest,
      files.reduce((n, f) => n + f.size, 0),
      files.length,
    );
    return { uri: indexed.uri, sha256: digest, size: indexed.size, index: indexed.index!, reused: false };
  }
  return { uri: artifactUri(location, contentKey(model, digest, '')), sha256: digest, size: files.reduce((n, f) => n + f.size, 0), files, reused: false };
}

/**
 * SPEC v3 §14: the gate's pickle scan runs before any byte moves. Findings are reported; they
 * refuse the registration when the rule for the version's first stage asks for `scan: pickle`.
 */
async function scanBeforeUpload(ctx: Parameters<Command>[0], path: string, model: string, stage: Stage, format: ArtifactFormat, policy: PromotionPolicy) {
  const { findings } = await scanLocalPath(path, { format, allowGlobals: policy.scan?.allowGlobals ?? [] });
  if (!findings.length) return;
  for (const f of findings) ctx.stderr(`scan: ${findingText(f)}\n`);
  if (scanRequiredOnRegistration(policy, model, stage))
    throw new ModelgateError(
      'E_PICKLE_SCAN',
      `${model}: the scan refuses the artifact (pickles importing globals outside the allow list, or what its MLmodel makes MLflow load), and ${stage} asks for scan: pickle`,
      ExitCode.content,
    );
}
