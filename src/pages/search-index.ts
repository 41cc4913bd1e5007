/**
 * The static site's search index (SPEC v3 §11): one file of versions per model
 * (`search/models/<model>.json`) and a small top-level `search/index.json` that summarizes each
 * model's file: its stages, formats and the range of each metric. The page's script reads the
 * summary, fetches only the files of models whose versions may match the `--where` expression,
 * and filters those with the CLI's own matcher. Pure.
 */
import type { ModelVersion } from '../manifest/types.js';
import { matchWhere, type Expr } from '../query/where.js';

/** One model's entry in `search/index.json`. */
export interface SearchShard {
  model: string;
  /** The file of its versions, relative to `search/`. */
  file: string;
  versions: number;
  stages: string[];
  formats: string[];
  /** Metric → [lowest, highest] over the versions that have it. */
  metrics: Record<string, [number, number]>;
}

export interface SearchIndex {
  shards: SearchShard[];
}

/** A version as the index holds it: without its file list (the version page has it). */
export function searchEntry(v: ModelVersion): ModelVersion {
  const { files: _files, ...artifact } = v.artifact;
  return { ...v, artifact };
}

/** The summary of one model's versions. */
export function searchShard(model: string, versions: readonly ModelVersion[]): SearchShard {
  const stages = new Set<string>();
  const formats = new Set<string>();
  const metrics: Record<string, [number, number]> = {};
  for (const v of versions) {
    stages.add(v.stage);
    formats.add(v.format);
    for (const [k, n] of Object.entries(v.metrics ?? {})) {
      const range = metrics[k];
      metrics[k] = range ? [Math.min(range[0], n), Math.max(range[1], n)] : [n, n];
    }
  }
  return { model, file: `models/${model}.json`, versions: versions.length, stages: [...stages], formats: [...formats], metrics };
}

/**
 * False only when no version of the shard can match `expr`. Each comparison is answered from the
 * summary, or true when the summary cannot tell; the grammar has AND and OR but no NOT, so
 * answering true for an unknown never drops a match.
 */
export function shardMayMatch(expr: Expr, shard: SearchShard): boolean {
  if (!('field' in expr)) {
    const left = shardMayMatch(expr.left, shard);
    return expr.type === 'and' ? left && shardMayMatch(expr.right, shard) : left || shardMayMatch(expr.right, shard);
  }
  const path = expr.field.path;
  const some = (values: Array<Partial<ModelVersion>>) => values.some((v) => matchWhere(expr, v as ModelVersion));
  if (path.length === 1 && path[0] === 'model') return some([{ model: shard.model }]);
  if (path.length === 1 && path[0] === 'stage') return some(shard.stages.map((stage) => ({ stage }) as Partial<ModelVersion>));
  if (path.length === 1 && path[0] === 'format') return some(shard.formats.map((format) => ({ format }) as Partial<ModelVersion>));
  if (path.length === 2 && path[0] === 'metrics') {
    const range = shard.metrics[path[1]!];
    // A missing field never matches, not even `!=`.
    if (!range) return false;
    if (expr.type !== 'compare' || typeof expr.value !== 'number') return true;
    const [low, high] = range;
    const x = expr.value;
    switch (expr.op) {
      case '>':
        return high > x;
      case '>=':
        return high >= x;
      case '<':
        return low < x;
      case '<=':
        return low <= x;
      case '=':
        return low <= x && x <= high;
      default:
        return true;
    }
  }
  return true;
}

/** Versions per part of `serve`'s search index: a model of 10,000 versions is summarized 40 times, so a metric range prunes within it too. */
const SEARCH_PART_VERSIONS = 256;

/**
 * A run of one model's versions as `serve`'s search index holds them: their summary and the
 * versions as one JSON text (search entries, no file lists), parsed only when the summary says a
 * version may match. Text, not objects: the index of 10,000 versions is a few megabytes of strings.
 */
export interface SearchPart {
  shard: SearchShard;
  rows: string;
}

/** One model's versions (in the order given) cut into parts of at most SEARCH_PART_VERSIONS. */
export function searchParts(model: string, versions: readonly ModelVersion[]): SearchPart[] {
  const parts: SearchPart[] = [];
  for (let at = 0; at < versions.length; at += SEARCH_PART_VERSIONS) {
    const run = versions.slice(at, at + SEARCH_PART_VERSIONS).map(searchEntry);
    parts.push({ shard: searchShard(model, run), rows: JSON.stringify(run) });
  }
  return parts;
}

/** The versions of `parts` (in their order) that match `expr`; a part whose summary rules out every match is not parsed. */
export function searchIndexed(parts: readonly SearchPart[], expr: Expr): ModelVersion[] {
  const found: ModelVersion[] = [];
  for (const part of parts) {
    if (!shardMayMatch(expr, part.shard)) continue;
    for (const v of JSON.parse(part.rows) as ModelVersion[]) if (matchWhere(expr, v)) found.push(v);
  }
  return found;
}
