import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localMLflowFolder } from '../commands/register.js';
import { mlflowEnvironment } from '../lineage/mlflow.js';
import type { Artifact, ArtifactFormat, Lineage } from '../manifest/types.js';
import type { VersionDraft } from '../registry/new-version.js';
import { detectFormat } from '../store/digest.js';
import { describeSource, putArtifact, type PutOptions } from '../store/put.js';
import type { ArtifactStore } from '../store/store.js';
import type { MlflowSources } from './client.js';
import { runValues, type NotCarried } from './records.js';

/** What an MLflow source and its run give a version: every manifest field but who, when, stage and description. */
export type CopiedFields = Omit<VersionDraft, 'model' | 'stage' | 'createdAt' | 'createdBy' | 'description'>;

export interface CopyOptions {
  model: string;
  /** The source as MLflow records it (`runs:/…`, `models:/…`, `mlflow-artifacts:/…`, `s3://…`, a path). */
  source: string;
  runId?: string;
  /** Where the copy is reported in `notCarried` (e.g. `fraud version 3`). */
  where: string;
  onBytes?: (n: number) => void;
  /** Runs on the downloaded copy before any byte goes into the store (serve's pickle scan); a throw stops the copy. */
  check?: (local: string, format: ArtifactFormat) => Promise<void>;
  /** The registration's id and mark (SPEC v3 §14), as `putArtifact` takes them. */
  put?: Pick<PutOptions, 'uploadId' | 'mark'>;
}

/**
 * Copies an MLflow model's bytes by digest into the store and reads what MLflow knows of it:
 * the source is downloaded through MLflow's own artifact access into a temporary folder, put into
 * the store (hashed as it is read: the digest the manifest records is of the bytes stored), its
 * MLmodel read as `register` reads it (flavors, signature, environment), and the run's metrics,
 * params, tags and id added (and who ran it, `runUser`). What the run cannot give (unknown or
 * deleted) is reported, not fatal.
 */
export async function copyMlflowModel(
  client: MlflowSources,
  store: ArtifactStore,
  opts: CopyOptions,
  notCarried: NotCarried[],
): Promise<{ fields: CopiedFields; runUser?: string }> {
  const location = await client.resolveSource(opts.source);
  const tmp = await mkdtemp(join(tmpdir(), 'modelgate-mlflow-'));
  try {
    const local = await client.download(location, join(tmp, 'artifact'), opts.onBytes);
    const described = await describeSource(local);
    const paths = described.kind === 'file' ? [described.name] : described.files.map((f) => f.path);
    const format = detectFormat(paths, described.kind === 'directory');
    const mlflow = format === 'mlflow' && described.kind === 'directory' ? await localMLflowFolder(location, described.files) : undefined;
    await opts.check?.(local, format);
    const stored = await putArtifact(store, opts.model, local, opts.put);
    const artifact: Artifact = {
      uri: stored.uri,
      sha256: stored.sha256,
      size: stored.size,
      ...(stored.files ? { files: stored.files } : {}),
      ...(stored.index ? { index: stored.index } : {}),
    };

    const runId = opts.runId || mlflow?.model.run?.id;
    const run = runId ? await client.run(runId) : undefined;
    if (runId && !run)
      notCarried.push({
        what: `${opts.where} run ${runId}`,
        reason: client.url
          ? 'the tracking server no longer has the run: no metrics, params or run tags'
          : 'no MLflow tracking server to read the run from: no metrics, params or run tags',
      });
    if (run?.info.lifecycle_stage === 'deleted')
      notCarried.push({ what: `${opts.where} run ${runId}`, reason: 'the run is deleted in MLflow (its values are carried over, the run itself is not)' });
    const values = run ? runValues(run, opts.where, notCarried) : undefined;

    const lineage: Lineage = {};
    if (values?.code) lineage.code = values.code;
    if (runId) {
      const experiment = run?.info.experiment_id;
      lineage.run = { id: runId, system: 'mlflow', ...(experiment && client.url ? { url: `${client.url}/#/experiments/${experiment}/runs/${runId}` } : {}) };
    }
    const environment = mlflowEnvironment(mlflow, new Map((artifact.files ?? []).map((f) => [f.path, f.sha256])));
    if (environment) lineage.environment = environment;

    const fields: CopiedFields = {
      artifact,
      format,
      ...(mlflow?.model.framework ? { framework: mlflow.model.framework } : {}),
      ...(values && Object.keys(values.metrics).length ? { metrics: values.metrics } : {}),
      ...(values && Object.keys(values.parameters).length ? { parameters: values.parameters } : {}),
      ...(mlflow?.model.signature ? { signature: mlflow.model.signature } : {}),
      ...(Object.keys(lineage).length ? { lineage } : {}),
      ...(values && Object.keys(values.annotations).length ? { annotations: values.annotations } : {}),
    };
    return { fields, ...(run?.info.user_id ? { runUser: run.info.user_id } : {}) };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
