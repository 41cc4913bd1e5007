import type { ModelVersion, SignatureEntry, SignatureType } from '../manifest/types.js';

/** One row of `list --json`: the same keys in the same order for every version. */
export interface VersionSummary {
  model: string;
  version: number;
  stage: string;
  createdAt: string;
  createdBy: string | null;
  format: string;
  artifact: { uri: string; sha256: string; size: number };
  metrics: Record<string, number>;
  parameters: Record<string, string | number | boolean>;
  annotations: Record<string, string>;
}

export function summarize(v: ModelVersion): VersionSummary {
  return {
    model: v.model,
    version: v.version,
    stage: v.stage,
    createdAt: v.createdAt,
    createdBy: v.createdBy ?? null,
    format: v.format,
    artifact: { uri: v.artifact.uri, sha256: v.artifact.sha256, size: v.artifact.size },
    metrics: v.metrics ?? {},
    parameters: v.parameters ?? {},
    annotations: v.annotations ?? {},
  };
}

/** `2026-11-27 10:00` from an ISO timestamp; other text unchanged. */
export function shortTime(iso: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(iso);
  return m ? `${m[1]} ${m[2]}` : iso;
}

/** The first few metrics, `auc=0.978 precision=0.956`, for one table cell. */
export function keyMetrics(metrics: Record<string, number> | undefined, limit = 3): string {
  const entries = Object.entries(metrics ?? {});
  const shown = entries.slice(0, limit).map(([k, v]) => `${k}=${formatNumber(v)}`);
  if (entries.length > limit) shown.push('…');
  return shown.join(' ');
}

export function formatNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : String(Number(n.toPrecision(6)));
}

/** Lineage as flat `path → value` pairs: `code.commit`, `data[0].id`, `run.url`, … */
export function flattenLineage(lineage: ModelVersion['lineage']): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const walk = (prefix: string, value: unknown) => {
    if (value === undefined || value === null) return;
    if (Array.isArray(value)) value.forEach((item, i) => walk(`${prefix}[${i}]`, item));
    else if (typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(prefix ? `${prefix}.${k}` : k, v);
    else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
      out.push([prefix, String(value)]);
  };
  walk('', lineage ?? {});
  return out;
}

/**
 * A signature's rows for `show`, one per column, tensor or parameter, its type written the way
 * MLflow prints a schema: `messages  array<{content: string, role: string}>`,
 * `[0]  tensor float32 [-1, 4]`, `temperature  float = 0.7`.
 */
export function signatureRows(signature: ModelVersion['signature']): Array<[string, string]> {
  if (!signature) return [];
  const typeText = (t: SignatureType): string => {
    if (t.type === 'array' && t.items) return `array<${typeText(t.items)}>`;
    if (t.type === 'map' && t.values) return `map<string, ${typeText(t.values)}>`;
    if (t.type === 'object' && t.properties) {
      return `{${Object.entries(t.properties)
        .map(([k, p]) => `${k}${p.required === false ? '?' : ''}: ${typeText(p)}`)
        .join(', ')}}`;
    }
    return t.type;
  };
  const entryText = (e: SignatureEntry): string => {
    const spec = e['tensor-spec'];
    if (spec) return `tensor ${spec.dtype} [${spec.shape.join(', ')}]`;
    if (e.shape) return `${e.type} [${e.shape.join(', ')}]`;
    return `${typeText(e)}${e.required === false ? ' (optional)' : ''}`;
  };
  const rows: Array<[string, string]> = [];
  for (const part of ['inputs', 'outputs'] as const) {
    (signature[part] ?? []).forEach((e, i) => rows.push([e.name !== undefined ? `${part}.${e.name}` : `${part}[${i}]`, entryText(e)]));
  }
  for (const p of signature.params ?? []) {
    const type = p.type === 'object' && p.properties ? typeText({ type: 'object', properties: p.properties }) : p.type;
    rows.push([`params.${p.name}`, `${type}${p.shape ? '[]' : ''} = ${JSON.stringify(p.default)}`]);
  }
  return rows;
}

/** The human block of `show`. */
export function formatVersion(v: ModelVersion): string {
  const lines: string[] = [];
  const pad = (rows: Array<[string, string]>) => {
    const width = Math.max(0, ...rows.map(([k]) => k.length));
    for (const [k, val] of rows) lines.push(`  ${k.padEnd(width)}  ${val}`);
  };
  lines.push(`${v.model}@${v.version}  ${v.stage}`);
  const head: Array<[string, string]> = [['created', `${v.createdAt}${v.createdBy ? ` by ${v.createdBy}` : ''}`]];
  if (v.description) head.push(['description', v.description]);
  head.push(['format', `${v.format}${v.framework ? ` (${v.framework.name}${v.framework.version ? ` ${v.framework.version}` : ''})` : ''}`]);
  pad(head);
  lines.push('artifact');
  const art: Array<[string, string]> = [
    ['uri', v.artifact.uri],
    ['sha256', v.artifact.sha256],
    ['size', `${v.artifact.size.toLocaleString('en-US')} bytes`],
  ];
  for (const f of v.artifact.files ?? []) art.push([`  ${f.path}`, `${f.size.toLocaleString('en-US')} bytes  sha256:${f.sha256.slice(0, 12)}…`]);
  pad(art);
  const section = (title: string, rows: Array<[string, string]>) => {
    if (rows.length === 0) return;
    lines.push(title);
    pad(rows);
  };
  section(
    'metrics',
    Object.entries(v.metrics ?? {}).map(([k, n]) => [k, formatNumber(n)]),
  );
  section(
    'parameters',
    Object.entries(v.parameters ?? {}).map(([k, p]) => [k, String(p)]),
  );
  section('signature', signatureRows(v.signature));
  section('lineage', flattenLineage(v.lineage));
  section('annotations', Object.entries(v.annotations ?? {}));
  return lines.join('\n');
}
