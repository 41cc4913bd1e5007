import { emit, parseCommand, type Command } from '../cli/context.js';
import { formatTable } from '../cli/table.js';
import type { ModelVersion } from '../manifest/types.js';
import { flattenLineage, formatNumber } from '../query/present.js';
import { parseModelRef } from '../registry/layout.js';
import { openReadRegistry } from '../registry/snapshot.js';

type Value = string | number | boolean | null;
export interface DiffRow {
  name: string;
  a: Value;
  b: Value;
  /** b − a, for numeric metrics present on both sides. */
  delta?: number;
  changed: boolean;
}

export interface VersionDiff {
  a: { model: string; version: number; stage: string };
  b: { model: string; version: number; stage: string };
  metrics: DiffRow[];
  parameters: DiffRow[];
  lineage: DiffRow[];
}

/** Pure: the side-by-side comparison of two versions; keys in first-seen order. */
export function diffVersions(a: ModelVersion, b: ModelVersion): VersionDiff {
  const rows = (left: Record<string, Value>, right: Record<string, Value>, numeric: boolean): DiffRow[] =>
    [...new Set([...Object.keys(left), ...Object.keys(right)])].map((name) => {
      const x = Object.hasOwn(left, name) ? left[name]! : null;
      const y = Object.hasOwn(right, name) ? right[name]! : null;
      const row: DiffRow = { name, a: x, b: y, changed: x !== y };
      if (numeric && typeof x === 'number' && typeof y === 'number') row.delta = Number((y - x).toPrecision(12));
      return row;
    });
  const id = (v: ModelVersion) => ({ model: v.model, version: v.version, stage: v.stage });
  return {
    a: id(a),
    b: id(b),
    metrics: rows(a.metrics ?? {}, b.metrics ?? {}, true),
    parameters: rows(a.parameters ?? {}, b.parameters ?? {}, false),
    lineage: rows(Object.fromEntries(flattenLineage(a.lineage)), Object.fromEntries(flattenLineage(b.lineage)), false),
  };
}

/** `modelgate diff`: metrics, parameters and lineage of two versions side by side. */
export const run: Command = async (ctx) => {
  const { positionals, misuse } = parseCommand('diff', ctx.argv);
  if (positionals.length !== 2) throw misuse('expected two references');
  const refs = positionals.map(parseModelRef);
  const { snapshot } = await openReadRegistry(ctx);
  const [a, b] = await Promise.all(refs.map((r) => snapshot.resolveRef(r)));
  const diff = diffVersions(a!, b!);
  emit(ctx, diff, () => {
    const show = (v: Value) => (v === null ? '—' : typeof v === 'number' ? formatNumber(v) : String(v));
    const left = `${diff.a.model}@${diff.a.version}`;
    const right = `${diff.b.model}@${diff.b.version}`;
    const sections: string[] = [];
    const section = (title: string, list: DiffRow[], withDelta: boolean) => {
      if (list.length === 0) return;
      const headers = withDelta ? [title.toUpperCase(), left, right, 'DELTA'] : [title.toUpperCase(), left, right, ''];
      sections.push(
        formatTable(
          headers,
          list.map((r) => [
            r.name,
            show(r.a),
            show(r.b),
            withDelta ? (r.delta === undefined ? '' : `${r.delta > 0 ? '+' : ''}${formatNumber(r.delta)}`) : r.changed ? '*' : '',
          ]),
        ),
      );
    };
    section('metric', diff.metrics, true);
    section('parameter', diff.parameters, false);
    section('lineage', diff.lineage, false);
    return sections.join('\n\n') || `${left} and ${right} have no metrics, parameters or lineage`;
  });
  return 0;
};
