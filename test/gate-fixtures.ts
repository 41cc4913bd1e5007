// Registries in memory for the gate's pure-core tests: a base, and a head derived from it.
import { stringify } from 'yaml';
import type { ModelVersion, PromotionPolicy } from '../src/manifest/types.js';
import { RegistrySnapshot } from '../src/registry/snapshot.js';
import type { RegistrySource } from '../src/registry/source.js';
import { MergedSource } from '../src/gate/merged-source.js';
import type { ArtifactVerifier, ChangedFile, GateInput, Review, StageHistory, TeamResolver } from '../src/gate/types.js';

export class MemorySource implements RegistrySource {
  constructor(
    readonly files: Map<string, string>,
    readonly label = 'memory',
  ) {}
  async readFile(path: string) {
    return this.files.get(path);
  }
  async listDir(path: string) {
    const prefix = path ? `${path.replace(/\/$/, '')}/` : '';
    const names = new Set<string>();
    for (const f of this.files.keys()) if (f.startsWith(prefix)) names.add(f.slice(prefix.length).split('/')[0]!);
    return [...names];
  }
}

export const HEAD_SHA = 'b'.repeat(40);
export const OLD_SHA = 'a'.repeat(40);
export const hex = (c: string) => c.repeat(64);

export const POLICY: PromotionPolicy = {
  apiVersion: 'modelgate.dev/v1',
  kind: 'PromotionPolicy',
  rules: [
    { name: 'register', to: 'None' },
    { name: 'to-staging', to: 'Staging', from: ['None'] },
    {
      name: 'to-production',
      to: 'Production',
      from: ['Staging'],
      approvals: [
        { count: 1, teams: ['ml-governance'] },
        { count: 1, users: ['carol', 'dave'] },
      ],
      metrics: { auc: { min: 0.95 }, latency_p95_ms: { max: 100 } },
      champion: { auc: { maxRegression: 0.02 } },
      requiredFields: ['lineage.code.commit', 'lineage.data'],
      artifact: 'full',
    },
    { name: 'rollback', to: 'Production', from: ['Archived'], previously: 'Production', approvals: [{ count: 1, teams: ['oncall'] }] },
    { name: 'archive', to: 'Archived', from: ['None', 'Staging'] },
    { name: 'alerts', annotations: ['performance_alert'], approvals: [{ count: 1, teams: ['oncall'] }] },
    {
      name: 'registry-config',
      paths: ['modelgate.yaml', 'policies/**', '.github/**', 'deploy/base/**', 'argocd/**'],
      approvals: [{ count: 2, teams: ['platform'] }],
    },
  ],
  models: { 'fraud-detector': { rules: [{ to: 'Production', metrics: { recall: { min: 0.88 } } }] } },
};

export function version(n: number, stage: ModelVersion['stage'], over: Partial<ModelVersion> = {}): ModelVersion {
  return {
    apiVersion: 'modelgate.dev/v1',
    kind: 'ModelVersion',
    model: 'fraud-detector',
    version: n,
    stage,
    createdAt: '2026-11-27T10:00:00Z',
    createdBy: 'maria',
    artifact: {
      uri: `s3://ml-models/registry/${over.model ?? 'fraud-detector'}/sha256/${hex(String(n))}/model.joblib`,
      sha256: hex(String(n)),
      size: 1000 + n,
    },
    format: 'joblib',
    metrics: { auc: 0.96, recall: 0.9, latency_p95_ms: 40 },
    lineage: { code: { repository: 'https://github.com/acme/fraud', commit: 'c'.repeat(40) }, data: [{ id: 'txn-2023-q3-v5' }] },
    ...over,
  };
}

export const vpath = (n: number, model = 'fraud-detector') => `models/${model}/versions/${n}.yaml`;

export function baseFiles(): Map<string, string> {
  const files = new Map<string, string>();
  files.set(
    'modelgate.yaml',
    stringify({ apiVersion: 'modelgate.dev/v1', kind: 'Registry', storage: { uri: 's3://ml-models/registry' }, github: { repository: 'acme/model-registry' } }),
  );
  files.set('policies/promotion.yaml', stringify(POLICY));
  files.set('models/fraud-detector/model.yaml', stringify({ apiVersion: 'modelgate.dev/v1', kind: 'Model', name: 'fraud-detector' }));
  files.set(vpath(1), stringify(version(1, 'Archived', { metrics: { auc: 0.95, recall: 0.9, latency_p95_ms: 50 } })));
  files.set(vpath(2), stringify(version(2, 'Production', { metrics: { auc: 0.97, recall: 0.9, latency_p95_ms: 45 } })));
  files.set(vpath(3), stringify(version(3, 'Staging')));
  return files;
}

/** Members by team; `fail` makes every lookup of that team throw like an HTTP 500. */
export function teams(members: Record<string, string[]>, failing: string[] = []): TeamResolver & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async isActiveMember(team, login) {
      calls.push(`${team}/${login}`);
      if (failing.includes(team)) throw Object.assign(new Error('Server Error token=ghp_secret'), { status: 500 });
      return (members[team] ?? []).some((m) => m.toLowerCase() === login.toLowerCase());
    },
  };
}

export const MEMBERS = { 'ml-governance': ['Gina'], oncall: ['olga'], platform: ['pat', 'paula'] };

export function artifacts(bad: string[] = [], throws = false): ArtifactVerifier & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async verify(a, mode) {
      calls.push(`${mode}:${a.sha256}`);
      if (throws) throw Object.assign(new Error('connect ECONNREFUSED'), { name: 'S3ServiceException', $metadata: { httpStatusCode: 503 } });
      return bad.includes(a.sha256)
        ? { ok: false, detail: `sha256 mismatch: store has ${hex('f')}` }
        : { ok: true, detail: `sha256 ${a.sha256.slice(0, 12)}… verified` };
    },
  };
}

export function history(production: Array<[string, number]>): StageHistory {
  return {
    async wasInStage(m, v, s) {
      return s === 'Production' && production.some(([pm, pv]) => pm === m && pv === v);
    },
  };
}

export const approve = (login: string, commitId = HEAD_SHA, type = 'User', state = 'APPROVED'): Review => ({ user: { login, type }, state, commitId });

/** A gate input whose head is the base with `changes` applied (content, or null to delete). */
export function gateInput(changes: Record<string, string | null>, over: Partial<GateInput> = {}, base = baseFiles()): GateInput {
  const head = new Map(base);
  const changed: ChangedFile[] = [];
  for (const [path, content] of Object.entries(changes)) {
    changed.push({ path, status: content === null ? 'D' : base.has(path) ? 'M' : 'A' });
    if (content === null) head.delete(path);
    else head.set(path, content);
  }
  const baseSource = new MemorySource(base, 'base');
  return {
    base: new RegistrySnapshot(baseSource),
    head: new RegistrySnapshot(
      new MergedSource(
        baseSource,
        new MemorySource(head, 'head'),
        changed.map((c) => c.path),
      ),
    ),
    changedFiles: changed,
    pullRequest: { number: 7, author: { login: 'maria', type: 'User' }, headSha: HEAD_SHA },
    reviews: [],
    teams: teams(MEMBERS),
    artifacts: artifacts(),
    history: history([
      ['fraud-detector', 1],
      ['fraud-detector', 2],
    ]),
    options: { approvals: 'require' },
    ...over,
  };
}

/** The usual promotion: 3 Staging → Production, 2 Production → Archived. */
export function promote3(over: Partial<ModelVersion> = {}): Record<string, string> {
  return {
    [vpath(3)]: stringify(version(3, 'Production', over)),
    [vpath(2)]: stringify(version(2, 'Archived', { metrics: { auc: 0.97, recall: 0.9, latency_p95_ms: 45 } })),
  };
}

/** A promotion of version 3 whose manifest (base and head alike) carries `over`. */
export function promotion(over: Partial<ModelVersion>, inputOver: Partial<GateInput> = {}): GateInput {
  const files = baseFiles();
  files.set(vpath(3), stringify(version(3, 'Staging', over)));
  return gateInput(promote3(over), inputOver, files);
}
