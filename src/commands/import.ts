import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { emit, parseCommand, type Command, type CommandContext } from '../cli/context.js';
import { ExitCode, ModelgateError, usageError } from '../errors.js';
import { commitIdentity, GitRepo, type Identity } from '../git/repo.js';
import { dvcCachePaths, parseDvcDirListing, parseDvcFile } from '../import/dvc.js';
import { gtoAnnotations, parseArtifactsYaml, parseStageMap, planGtoImport, type GtoStep, type NotCarried } from '../import/gto.js';
import { applyChange, type ApplyMode } from '../promote/apply-change.js';
import { modeOf } from '../promote/command.js';
import { completeChange } from '../promote/pins.js';
import { planAliasDelete, planAliasSet, planStageChange, type ChangePlan } from '../promote/plan.js';
import { isModelName } from '../registry/layout.js';
import type { VersionDraft } from '../registry/new-version.js';
import { openRegistry, RegistrySnapshot } from '../registry/snapshot.js';
import { GitTreeSource, registryPrefix } from '../registry/source.js';
import { detectFormat } from '../store/digest.js';
import { describeSource, putArtifact } from '../store/put.js';
import { openStore } from '../store/store.js';
import { checkPullRequestSetup, planRegistration, registrationChange } from './register.js';
import { MlflowTrackingClient } from '../mlflow/client.js';
import { branchTarget, headTarget, mainTarget, mlflowImported, prefetched, RegistrationChain } from '../mlflow/chain.js';
import { importBranchStart, openImportPullRequest, versionRoom } from '../mlflow/pull-request.js';
import type { OpenedPullRequest } from '../github/promotion-pr.js';
import { MAX_LISTED_COMMITS } from '../github/pull-requests.js';
import { MLFLOW_IMPORT_BRANCH, withPins } from '../promote/change.js';
import { copyMlflowModel } from '../mlflow/copy.js';
import {
  deletedVersions,
  mlflowTime,
  mlflowVersionKey,
  planMoves,
  stageOf,
  versionAnnotations,
  type MlflowModelVersion,
  type MlflowMove,
  type MlflowRegisteredModel,
  type NotCarried as MlflowNotCarried,
} from '../mlflow/records.js';
import { modelFile } from '../registry/layout.js';
import { assertValidModel, renderModel } from '../registry/new-version.js';

/** The commit-message trailer that names the GTO tag a commit carried over: what makes a re-run skip it. */
const GTO_TRAILER = 'Gto-Tag';

/**
 * `modelgate import gto <repo>`: GTO's registrations, stage assignments and deprecations, in order,
 * one commit each. `modelgate import mlflow`: an MLflow registry's versions in creation order, then
 * its stages and aliases.
 */
export const run: Command = async (ctx) => {
  const { values, positionals, misuse } = parseCommand('import', ctx.argv);
  const [source, target, ...rest] = positionals;
  if (source === 'mlflow') {
    if (target !== undefined) throw misuse('import mlflow takes no argument (the server is --tracking-uri)');
    const uri = values['tracking-uri'] ?? ctx.env.MLFLOW_TRACKING_URI;
    if (!uri) throw misuse('import mlflow needs --tracking-uri <url> (or MLFLOW_TRACKING_URI)');
    const batch = values.batch === undefined ? 100 : /^[1-9][0-9]*$/.test(values.batch) ? Number(values.batch) : NaN;
    if (!Number.isSafeInteger(batch)) throw misuse(`--batch ${values.batch}: expected a positive whole number of versions`);
    return importMlflow(ctx, uri, new MlflowTrackingClient(uri, ctx.env), values.model ?? [], modeOf(values), values['dry-run'] ?? false, batch);
  }
  if (values['tracking-uri'] !== undefined || values.model !== undefined || values['dry-run'] || values.batch !== undefined || values.pr)
    throw misuse('--tracking-uri, --model, --dry-run, --batch and --pr are for import mlflow');
  if (source !== 'gto' || target === undefined || rest.length) throw misuse('import needs gto <repo> or mlflow');
  const mapStage = parseStageMap(values.stages);
  if (typeof mapStage === 'string') throw usageError(mapStage);
  return importGto(ctx, new GitRepo(resolve(ctx.cwd, target)), mapStage, modeOf(values));
};

interface Imported {
  tag: string;
  commit?: string;
  change: string;
}

async function importGto(ctx: CommandContext, gto: GitRepo, mapStage: Exclude<ReturnType<typeof parseStageMap>, string>, mode: ApplyMode): Promise<number> {
  if (!(await gto.resolve('HEAD'))) throw usageError(`${gto.dir}: not a git repository with commits`);
  const { steps, notCarried } = planGtoImport(await gto.annotatedTags(), mapStage);
  const { repo } = openRegistry(ctx);
  const prefix = await registryPrefix(repo, { requireGit: true });
  // What earlier runs carried over is read where this run's commits land: HEAD, or with --push the remote's main.
  const base = (mode === 'push' ? await repo.fetchBranch('origin', 'main') : undefined) ?? (await repo.resolve('HEAD'));
  if (!base) throw new ModelgateError('E_NO_COMMIT', 'the registry has no commit yet', ExitCode.content);
  const snapshot = new RegistrySnapshot(new GitTreeSource(repo, base, prefix));
  const config = await snapshot.config();
  const done = await repo.trailerValues(base, GTO_TRAILER);
  // (artifact, GTO version) → modelgate version number, from what earlier runs wrote.
  const numbers = await importedVersions(snapshot);
  const key = (artifact: string, version: string) => `${artifact}\0${version}`;
  const skippedArtifacts = new Set<string>();
  const imported: Imported[] = [];

  /**
   * One step as one commit, planned on the registry it lands on (after a lost race, on what won);
   * a plan of undefined (the version is where the step would move it) commits nothing.
   */
  const commit = async (step: GtoStep, plan: (snap: RegistrySnapshot) => Promise<ChangePlan | undefined>) => {
    const applied = await applyChange({
      repo,
      prefix,
      mode,
      env: ctx.env,
      author: tagger(step.by),
      date: step.at,
      plan: async (snap) => {
        if (!snap) throw new ModelgateError('E_NO_COMMIT', 'the registry has no commit yet', ExitCode.content);
        const manifest = await plan(snap);
        if (!manifest)
          return withPins({ kind: 'promote', summary: '', changes: [], edits: [], versions: [], branch: '', message: '' }, { files: [], changes: [] });
        return completeChange(snap.source, { ...manifest, message: `${manifest.message.trimEnd()}\n\n${GTO_TRAILER}: ${step.tag}\n` });
      },
    });
    if (!applied.empty) imported.push({ tag: step.tag, commit: applied.commit, change: applied.change.summary });
    return applied;
  };

  /**
   * Every alias that points at a version `which` names deleted, one commit each: an archived
   * version keeps none (SPEC §9), and GTO's other stages end with it.
   */
  const dropAliases = async (step: GtoStep, model: string, which: (snap: RegistrySnapshot) => Promise<number[]>) => {
    const next = async (snap: RegistrySnapshot) => {
      const versions = await which(snap);
      const alias = Object.entries(await snap.aliases(model)).find(([, target]) => versions.includes(target))?.[0];
      return alias === undefined ? undefined : planAliasDelete(snap, model, alias);
    };
    while (!(await commit(step, next)).empty);
  };

  const store = await openStore(config.storage, ctx.env);
  try {
    for (const step of steps) {
      if (done.has(step.tag) || skippedArtifacts.has(step.artifact)) continue;
      const model = step.artifact;
      if (!isModelName(model)) {
        notCarried.push({ tag: step.tag, reason: `${model} is not a modelgate model name (lowercase letters, digits and -)` });
        skippedArtifacts.add(model);
        continue;
      }
      if (step.kind === 'register') {
        if (numbers.has(key(model, step.version))) continue;
        const info = parseArtifactsYaml(await gto.readFileAt(step.commit, 'artifacts.yaml'))[step.artifact];
        if (!info?.path) {
          notCarried.push({ tag: step.tag, reason: `artifacts.yaml at ${step.commit.slice(0, 12)} gives no path inside the repository for ${step.artifact}` });
          continue;
        }
        const tmp = await mkdtemp(join(tmpdir(), 'modelgate-import-'));
        try {
          if (!(await gto.exportPath(step.commit, info.path, tmp))) {
            const missing = await fromDvcCache(gto, step.commit, info.path, tmp);
            if (missing) {
              notCarried.push({ tag: step.tag, reason: missing });
              continue;
            }
          }
          const local = join(tmp, info.path);
          const described = await describeSource(local);
          const artifact = await putArtifact(store, model, local);
          const draft: VersionDraft = {
            model,
            stage: 'None',
            createdAt: step.at,
            createdBy: step.by.name,
            ...(info.description ? { description: info.description } : {}),
            artifact: {
              uri: artifact.uri,
              sha256: artifact.sha256,
              size: artifact.size,
              ...(artifact.files ? { files: artifact.files } : {}),
              ...(artifact.index ? { index: artifact.index } : {}),
            },
            format: detectFormat(described.kind === 'file' ? [described.name] : described.files.map((f) => f.path), described.kind === 'directory'),
            annotations: gtoAnnotations(step, info),
          };
          const applied = await commit(step, async (snap) =>
            registrationChange(
              await planRegistration(snap.source, draft),
              draft,
              (n) => `register ${model}@${n} (GTO ${step.artifact}@${step.version})\n\n${step.message ? `${step.message}\n\n` : ''}sha256 ${artifact.sha256}\n`,
            ),
          );
          numbers.set(key(model, step.version), applied.change.versions[0]!.version);
        } finally {
          await rm(tmp, { recursive: true, force: true });
        }
        continue;
      }
      if (step.kind === 'stage') {
        const n = numbers.get(key(model, step.version));
        if (n === undefined) {
          notCarried.push({ tag: step.tag, reason: `${step.artifact}@${step.version} was not carried over` });
          continue;
        }
        if (step.to === 'Archived') await dropAliases(step, model, async () => [n]);
        // Production holds one version here (GTO's prod may hold several): the one it archives loses its aliases.
        if (step.to === 'Production')
          await dropAliases(step, model, async (snap) => (await snap.inStage(model, 'Production')).map((v) => v.version).filter((p) => p !== n));
        await commit(step, async (snap) => {
          const current = (await snap.version(model, n))?.stage;
          // An unassignment of a stage the version has left already, or a move to where it is: nothing to record.
          if (current === undefined || current === step.to || (step.from !== undefined && current !== step.from)) return undefined;
          return planStageChange(snap, model, n, step.to, step.to === 'Archived' ? 'archive' : 'promote');
        });
        continue;
      }
      if (step.kind === 'alias') {
        const n = numbers.get(key(model, step.version));
        if (n === undefined) {
          notCarried.push({ tag: step.tag, reason: `${step.artifact}@${step.version} was not carried over` });
          continue;
        }
        await commit(step, async (snap) => {
          const target = (await snap.aliases(model))[step.alias];
          if (step.set) return target === n || (await snap.version(model, n))?.stage === 'Archived' ? undefined : planAliasSet(snap, model, n, step.alias);
          return target === n ? planAliasDelete(snap, model, step.alias) : undefined;
        });
        continue;
      }
      // A deprecated artifact: every version not archived yet is archived, one commit each.
      for (const [k, n] of numbers) {
        if (!k.startsWith(`${model}\0`)) continue;
        await dropAliases(step, model, async () => [n]);
        await commit(step, async (snap) =>
          (await snap.version(model, n))?.stage === 'Archived' ? undefined : planStageChange(snap, model, n, 'Archived', 'archive'),
        );
      }
    }
  } finally {
    store.close();
  }
  return report(ctx, imported, notCarried);
}

function report(ctx: CommandContext, imported: Imported[], notCarried: NotCarried[]): number {
  emit(ctx, { imported, notCarried }, () =>
    [
      ...imported.map((i) => `${i.tag}: ${i.change}${i.commit ? ` (${i.commit.slice(0, 12)})` : ''}`),
      imported.length ? `imported ${imported.length} change(s)` : 'nothing new to import',
      ...(notCarried.length ? ['not carried over:', ...notCarried.map((n) => `  ${n.tag}: ${n.reason}`)] : []),
    ].join('\n'),
  );
  return ExitCode.ok;
}

/** The tagger as a commit author (GTO's tagger email may be empty). */
const tagger = (by: { name: string; email: string }): Identity => ({ name: by.name, email: by.email || `${by.name}@users.noreply.github.com` });

/** Versions an earlier import wrote, by the GTO version they carry (`gto.version`). */
async function importedVersions(snapshot: RegistrySnapshot): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const model of await snapshot.modelNames()) {
    for (const n of await snapshot.versionNumbers(model)) {
      const v = await snapshot.version(model, n);
      const gtoVersion = v?.annotations?.['gto.version'];
      if (gtoVersion !== undefined) out.set(`${model}\0${gtoVersion}`, n);
    }
  }
  return out;
}

/**
 * Copies a path DVC tracks (its `.dvc` file at `commit`) from DVC's cache in the repository's
 * work tree to `dest`, checking each file's md5 against what DVC recorded as it is copied.
 * Answers why it could not, or undefined once copied.
 */
async function fromDvcCache(gto: GitRepo, commit: string, path: string, dest: string): Promise<string | undefined> {
  const at = `at ${commit.slice(0, 12)}`;
  const out = parseDvcFile(await gto.readFileAt(commit, `${path.replace(/(?<!\/)\/+$/, '')}.dvc`));
  if (!out) return `${path} is neither in the repository nor tracked by a .dvc file ${at}`;
  const cached = (md5: string, directory = false) =>
    dvcCachePaths(md5, directory)
      .map((p) => join(gto.dir, p))
      .find((p) => existsSync(p));
  const copy = async (md5: string, to: string): Promise<string | undefined> => {
    const from = cached(md5);
    if (!from) return `${path}: DVC's cache in ${gto.dir} does not hold ${md5} (run dvc pull there first)`;
    await mkdir(dirname(to), { recursive: true });
    const hash = createHash('md5');
    const tee = new Transform({ transform: (chunk: Buffer, _e, next) => (hash.update(chunk), next(null, chunk)) });
    await pipeline(createReadStream(from), tee, createWriteStream(to));
    const got = hash.digest('hex');
    return got === md5 ? undefined : `${path}: DVC's cache object ${md5} holds bytes of md5 ${got}`;
  };
  if (!out.directory) return copy(out.md5, join(dest, path));
  const listing = cached(out.md5, true);
  const files = listing ? parseDvcDirListing(await readFile(listing, 'utf8')) : undefined;
  if (!files) return `${path}: DVC's cache in ${gto.dir} holds no readable listing ${out.md5}.dir (run dvc pull there first)`;
  for (const f of files) {
    const problem = await copy(f.md5, join(dest, path, f.relpath));
    if (problem) return problem;
  }
  return undefined;
}

/** Versions `import mlflow` downloads and stores while the ones before them are committed. */
const COPY_CONCURRENCY = 4;

/** One change `import mlflow` made (or, with --dry-run, would make). */
interface MlflowImported {
  what: string;
  change: string;
  commit?: string;
}

/**
 * `modelgate import mlflow`: every registered model's versions, in MLflow's creation order, one
 * commit each authored at the original time and by the original user (bytes copied by digest,
 * MLmodel, run metrics, params and tags); then the stage and alias moves that bring them where
 * MLflow has them, one commit each. What an earlier run carried over is found by the
 * `mlflow/model-version` annotation, so a re-run imports only what is new and a killed run resumes
 * without duplicates. The commits are built locally as a chain and land one batch (`batchSize`
 * changes) per push, while the next versions download (RegistrationChain, `prefetched`): on HEAD,
 * on the remote's main (--push), or on the one import branch whose pull request --pr opens (or
 * updates: a re-run continues the branch while it is open).
 */
async function importMlflow(
  ctx: CommandContext,
  trackingUri: string,
  client: MlflowTrackingClient,
  names: string[],
  mode: ApplyMode,
  dryRun: boolean,
  batchSize: number,
): Promise<number> {
  const { repo } = openRegistry(ctx);
  const prefix = await registryPrefix(repo, { requireGit: true });
  const head = async () => {
    const commit = await repo.resolve('HEAD');
    if (!commit) throw new ModelgateError('E_NO_COMMIT', 'the registry has no commit yet', ExitCode.content);
    return commit;
  };
  if (mode === 'pr' && !dryRun) checkPullRequestSetup(ctx.env, await new RegistrySnapshot(new GitTreeSource(repo, await head(), prefix)).config());
  // What earlier runs carried over is read where this run's commits land: HEAD, the remote's main
  // (--push), or the import branch it continues (--pr).
  let start: { base: string; held: string | undefined; ahead?: number };
  if (mode === 'pr' && !dryRun) start = await importBranchStart(repo, MLFLOW_IMPORT_BRANCH);
  else {
    const base = (mode === 'push' && !dryRun ? await repo.fetchBranch('origin', 'main') : undefined) ?? (await head());
    start = { base, held: base };
  }
  const snapshot = new RegistrySnapshot(new GitTreeSource(repo, start.base, prefix));
  const config = await snapshot.config();
  const done = await mlflowImported(snapshot);
  const notCarried: MlflowNotCarried[] = [];
  const imported: MlflowImported[] = [];

  const models = await client.registeredModels(names);
  for (const name of names) if (!models.some((m) => m.name === name)) notCarried.push({ what: name, reason: 'no registered model of that name in MLflow' });
  const queue: Array<{ model: MlflowRegisteredModel; version: MlflowModelVersion }> = [];
  const versionsOf = new Map<string, MlflowModelVersion[]>();
  for (const model of models) {
    if (!isModelName(model.name)) {
      notCarried.push({ what: model.name, reason: 'not a modelgate model name (lowercase letters, digits and -)' });
      continue;
    }
    const versions = await client.modelVersions(model.name);
    for (const n of deletedVersions(versions)) notCarried.push({ what: `${model.name} version ${n}`, reason: 'deleted in MLflow' });
    const ready = versions.filter((v) => {
      if (!v.status || v.status === 'READY') return true;
      notCarried.push({ what: `${model.name} version ${v.version}`, reason: `MLflow has it ${v.status}, not READY` });
      return false;
    });
    versionsOf.set(model.name, ready);
    queue.push(...ready.map((version) => ({ model, version })));
  }
  queue.sort(
    (a, b) =>
      Number(a.version.creation_timestamp ?? 0) - Number(b.version.creation_timestamp ?? 0) ||
      a.model.name.localeCompare(b.model.name) ||
      Number(a.version.version) - Number(b.version.version),
  );
  const todo = queue.filter(({ model, version: v }) => !done.has(mlflowVersionKey(model.name, v.version)));
  if (mode === 'pr' && !dryRun) {
    const fits = await pullRequestRoom(snapshot, start.ahead ?? 0, models, versionsOf, todo, done);
    for (const { model, version: v } of todo.splice(fits))
      notCarried.push({
        what: `${model.name} version ${v.version}`,
        reason: `left for the next pull request (GitHub lists at most ${MAX_LISTED_COMMITS} commits of one, and the gate reads them all): merge this one, then run the import again`,
      });
  }

  if (dryRun) {
    for (const { model, version: v } of todo) {
      imported.push({ what: `${model.name} version ${v.version}`, change: `Register ${model.name}@${v.version} from ${v.source ?? 'MLflow'}` });
      done.set(mlflowVersionKey(model.name, v.version), Number(v.version));
    }
    for (const model of models) {
      const versions = versionsOf.get(model.name);
      if (!versions) continue;
      const moves = planMoves(model, versions, importedNumbers(model.name, versions, done), notCarried);
      for (const m of moves)
        if (m.kind === 'stage' && m.to !== 'None') imported.push({ what: `${m.model} version ${m.version}`, change: `${m.model}@${m.version} to ${m.to}` });
      for (const m of moves) if (m.kind === 'alias') imported.push({ what: `${m.model} alias ${m.alias}`, change: `${m.model}@${m.version} as ${m.alias}` });
    }
    return reportMlflow(ctx, { dryRun, imported, notCarried });
  }

  const target = mode === 'pr' ? branchTarget(repo, MLFLOW_IMPORT_BRANCH) : mode === 'push' ? mainTarget(repo) : headTarget(repo);
  const chain = new RegistrationChain(repo, prefix, target, start, done);
  // Stage and alias moves are the importer's commits (registrations are their MLflow user's).
  const importer = await commitIdentity(repo, ctx.env);
  const move = (what: string, at: string | undefined, plan: (snap: RegistrySnapshot) => Promise<ChangePlan | undefined>) =>
    chain.add({ what, ...(at ? { at } : {}), ...importer, plan });
  const landed = async (force: boolean) => {
    if (force || chain.pending >= batchSize) imported.push(...(await chain.land()));
  };

  const store = await openStore(config.storage, ctx.env);
  try {
    const copies = prefetched(todo, COPY_CONCURRENCY, async ({ model, version: v }) => {
      const what = `${model.name} version ${v.version}`;
      const lost: MlflowNotCarried[] = [];
      try {
        const copied = await copyMlflowModel(
          client,
          store,
          { model: model.name, source: `models:/${model.name}/${v.version}`, ...(v.run_id ? { runId: v.run_id } : {}), where: what },
          lost,
        );
        return { copied, lost };
      } catch (e) {
        // A source MLflow cannot give (unknown run, missing artifact): reported; the server failing stops the import.
        if (e instanceof ModelgateError && e.exit === ExitCode.content)
          return { lost: [...lost, { what, reason: `source ${v.source ?? '(none)'} unreachable: ${e.message}` }] };
        throw e;
      }
    });
    for (const [i, { model, version: v }] of todo.entries()) {
      const { copied, lost } = await copies(i);
      notCarried.push(...lost);
      if (!copied) continue;
      const what = `${model.name} version ${v.version}`;
      const createdBy = v.user_id || copied.runUser || 'mlflow';
      const createdAt = mlflowTime(v.creation_timestamp) ?? new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
      const draft: VersionDraft = {
        model: model.name,
        stage: 'None',
        createdAt,
        createdBy,
        ...(v.description ? { description: v.description.slice(0, 4096) } : {}),
        ...copied.fields,
        annotations: { ...copied.fields.annotations, ...versionAnnotations(v, what, notCarried) },
      };
      const wanted = Number(v.version);
      // The numbers below MLflow's are taken: the version keeps MLflow's number where it is free.
      const below = new Set(Array.from({ length: wanted - 1 }, (_, i) => i + 1));
      await chain.add({
        key: mlflowVersionKey(model.name, v.version),
        what,
        at: createdAt,
        author: { name: createdBy, email: createdBy.includes('@') ? createdBy : `${createdBy}@users.noreply.github.com` },
        plan: async (snap) => {
          const planned = await planRegistration(snap.source, draft, below);
          if (planned.newModel && model.description) {
            const text = renderModel({ apiVersion: 'modelgate.dev/v1', kind: 'Model', name: model.name, description: model.description.slice(0, 4096) });
            assertValidModel(text, model.name);
            planned.files[modelFile(model.name)] = text;
          }
          return registrationChange(
            planned,
            draft,
            (n) => `register ${model.name}@${n} (MLflow ${model.name} version ${v.version})\n\nsource ${v.source ?? ''}\nsha256 ${draft.artifact.sha256}\n`,
          );
        },
      });
      await landed(false);
    }
    // The stages and aliases are planned on what carried over: land the versions first.
    await landed(true);

    for (const model of models) {
      const versions = versionsOf.get(model.name);
      if (!versions) continue;
      const numbers = importedNumbers(model.name, versions, done);
      const moves = planMoves(model, versions, numbers, notCarried);
      const aliasAt = mlflowTime(model.last_updated_timestamp);
      // Aliases first (they move off versions about to be archived), then stages, then aliases
      // again (one may need a version that was archived before).
      const aliases = moves.filter((m): m is Extract<MlflowMove, { kind: 'alias' }> => m.kind === 'alias');
      const setAliases = async () => {
        for (const m of aliases)
          await move(`${m.model} alias ${m.alias}`, aliasAt, async (snap) => {
            if ((await snap.aliases(m.model))[m.alias] === m.version || (await snap.version(m.model, m.version))?.stage === 'Archived') return undefined;
            return planAliasSet(snap, m.model, m.version, m.alias);
          });
      };
      await setAliases();
      await dropStaleAliases(model, numbers, (plan) => move(`${model.name} aliases`, aliasAt, plan));
      for (const m of moves) {
        if (m.kind !== 'stage') continue;
        await move(`${m.model} version ${m.version}`, m.at, async (snap) => {
          const current = (await snap.version(m.model, m.version))?.stage;
          if (current === undefined || current === m.to) return undefined;
          return planStageChange(snap, m.model, m.version, m.to, m.to === 'Archived' ? 'archive' : 'promote');
        });
      }
      await setAliases();
      await landed(false);
    }
    await landed(true);
  } catch (e) {
    // What was committed so far lands before the failure is reported: a re-run starts after it.
    await chain.land().catch(() => undefined);
    throw e;
  } finally {
    store.close();
  }
  if (mode !== 'pr') return reportMlflow(ctx, { dryRun, imported, notCarried });
  const opened = await openImportPullRequest({
    repo,
    prefix,
    branch: MLFLOW_IMPORT_BRANCH,
    tip: chain.tip,
    env: ctx.env,
    trackingUri,
    notCarried,
  });
  return reportMlflow(ctx, {
    dryRun,
    imported,
    notCarried,
    branch: MLFLOW_IMPORT_BRANCH,
    ...(opened ? { pullRequest: opened.pullRequest, gate: opened.decision.decision } : {}),
  });
}

/**
 * How many of `todo` (in order) an import pull request already `ahead` of main by that many
 * commits can take: each version is a commit, and one more when it has a stage to reach; the
 * stage moves of versions imported before and every alias move are counted first.
 */
async function pullRequestRoom(
  snapshot: RegistrySnapshot,
  ahead: number,
  models: readonly MlflowRegisteredModel[],
  versionsOf: ReadonlyMap<string, MlflowModelVersion[]>,
  todo: ReadonlyArray<{ version: MlflowModelVersion }>,
  done: ReadonlyMap<string, number>,
): Promise<number> {
  let moves = 0;
  for (const model of models) {
    const versions = versionsOf.get(model.name);
    if (!versions) continue;
    // An alias may be set twice (before and after the stages) and any alias there may be deleted.
    moves += 2 * (model.aliases?.length ?? 0) + Object.keys(await snapshot.aliases(model.name)).length;
    for (const v of versions) {
      const n = done.get(mlflowVersionKey(model.name, v.version));
      if (n !== undefined && (await snapshot.version(model.name, n))?.stage !== stageOf(v.current_stage)) moves++;
    }
  }
  let room = versionRoom(ahead, moves);
  let fits = 0;
  for (const { version: v } of todo) {
    room -= stageOf(v.current_stage) === 'None' ? 1 : 2;
    if (room < 0) break;
    fits++;
  }
  return fits;
}

/** MLflow version → modelgate version of `model`'s versions carried over. */
function importedNumbers(model: string, versions: readonly MlflowModelVersion[], done: ReadonlyMap<string, number>): Map<string, number> {
  const numbers = new Map<string, number>();
  for (const v of versions) {
    const n = done.get(mlflowVersionKey(model, v.version));
    if (n !== undefined) numbers.set(v.version, n);
  }
  return numbers;
}

function reportMlflow(
  ctx: CommandContext,
  out: { dryRun: boolean; imported: MlflowImported[]; notCarried: MlflowNotCarried[]; branch?: string; pullRequest?: OpenedPullRequest; gate?: string },
): number {
  const { dryRun, imported, notCarried, pullRequest } = out;
  emit(ctx, out, () =>
    [
      ...imported.map((i) => `${dryRun ? 'would import ' : ''}${i.what}: ${i.change}${i.commit ? ` (${i.commit.slice(0, 12)})` : ''}`),
      imported.length ? `${dryRun ? 'would import' : 'imported'} ${imported.length} change(s)` : 'nothing new to import',
      ...(pullRequest ? [`pull request #${pullRequest.number} ${pullRequest.created ? 'opened' : 'updated'}: ${pullRequest.url}`] : []),
      ...(notCarried.length ? ['not carried over:', ...notCarried.map((n) => `  ${n.what}: ${n.reason}`)] : []),
    ].join('\n'),
  );
  return ExitCode.ok;
}

/**
 * Aliases on imported versions that MLflow no longer has there (moved or deleted since an earlier
 * import) are deleted, one commit each, so MLflow's current aliases are modelgate's.
 */
async function dropStaleAliases(
  model: MlflowRegisteredModel,
  numbers: ReadonlyMap<string, number>,
  commit: (plan: (snap: RegistrySnapshot) => Promise<ChangePlan | undefined>) => Promise<boolean>,
): Promise<void> {
  const imported = new Set(numbers.values());
  const wanted = new Map((model.aliases ?? []).map((a) => [a.alias, numbers.get(a.version)]));
  const next = async (snap: RegistrySnapshot) => {
    const stale = Object.entries(await snap.aliases(model.name)).find(([alias, n]) => imported.has(n) && wanted.get(alias) !== n);
    return stale ? planAliasDelete(snap, model.name, stale[0]) : undefined;
  };
  while (await commit(next));
}
