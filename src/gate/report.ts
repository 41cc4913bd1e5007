import type { ModelVersion } from '../manifest/types.js';
import { formatProblem } from '../manifest/problem.js';
import type { CheckResult, Decision, Transition } from './types.js';

/**
 * Text from a pull request (title, branch, file names, manifest values quoted in details) made
 * inert in Markdown: no HTML, no links or images, no mentions, no emphasis, one line.
 */
export function escapeMarkdown(text: string): string {
  // Entities last: a backslash before their `#` would show them as text (`&\#64;`).
  return String(text)
    .replace(/[\r\n\t]+/g, ' ')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/[\\`*_{}[\]()#+\-.!|~"']/g, '\\$&')
    .replace(/@/g, '&#64;')
    .replace(/:/g, '&#58;');
}

/** A fenced block that content cannot close early, whatever backticks it holds. */
function fenced(content: string, info = ''): string {
  const longest = Math.max(2, ...(content.match(/`+/g) ?? []).map((m) => m.length));
  const fence = '`'.repeat(longest + 1);
  return `${fence}${info}\n${content.replace(/\n$/, '')}\n${fence}`;
}

const ICON = { pass: '✅', fail: '❌', pending: '⏳' } as const;
const HEADLINE = { pass: 'may merge', fail: 'may not merge', pending: 'waiting for approvals' } as const;

function describeTransition(t: Transition): string {
  const ref = t.model !== undefined && t.version !== undefined ? `${t.model}@${t.version}` : (t.model ?? t.file);
  switch (t.kind) {
    case 'new-version':
      return `${ref}: new version in ${t.to}`;
    case 'stage':
      return `${ref}: ${t.from} → ${t.to}${t.annotationKeys ? ` (annotations ${t.annotationKeys.join(', ')})` : ''}`;
    case 'annotations':
      return `${ref}: annotations ${t.annotationKeys?.join(', ')}`;
    case 'version-edit':
      return `${ref}: manifest edited`;
    case 'model':
      return `model ${ref}: model.yaml changed`;
    case 'alias': {
      const a = t.alias!;
      const at = (n: number | undefined) => (n === undefined ? 'unset' : `v${n}`);
      return `${t.model}@${a.name}: ${at(a.from)} → ${at(a.to)}`;
    }
    default:
      return `${t.file}: changed`;
  }
}

export interface ReportContext {
  pullRequest?: { number: number; title?: string; headRef?: string; headSha?: string; author?: string };
  /** The Kubernetes manifests that merging would change (`deploy/` diff), when known. */
  deployDiff?: string;
  /** Why the deploy diff is not shown. */
  deployNote?: string;
  /** What became of the signed decision record of a pass (SPEC v2 §8). */
  decisionRecord?: { uri?: string; message: string };
}

/** The job summary and the pull request comment: per change, every rule and check, with reasons. */
export function renderMarkdown(d: Decision, ctx: ReportContext = {}): string {
  const e = escapeMarkdown;
  const out: string[] = [`## ${ICON[d.decision]} modelgate: ${HEADLINE[d.decision]}`, '', e(d.summary), ''];
  const pr = ctx.pullRequest;
  if (pr) {
    const parts = [`Pull request #${pr.number}`];
    if (pr.title !== undefined) parts.push(`“${e(pr.title)}”`);
    if (pr.headRef !== undefined) parts.push(`from branch ${e(pr.headRef)}`);
    if (pr.headSha) parts.push(`at ${pr.headSha.slice(0, 12)}`);
    out.push(parts.join(' '), '');
  }
  for (const t of d.transitions) {
    out.push(`### ${ICON[statusOf(t)]} ${e(describeTransition(t))}`, '', `File: ${e(t.file)}`, '', ...checksTable(t), '');
    const metrics = Object.keys(t.metrics ?? {});
    if (metrics.length && (t.kind === 'stage' || t.kind === 'new-version' || t.kind === 'alias')) {
      const champ = t.champion;
      // An alias move compares the version it moves to with the one it leaves.
      const before = t.kind === 'alias' ? `${t.model}@${t.alias!.name} before` : 'champion';
      out.push(`| metric | ${e(`${t.model}@${t.version}`)} | ${champ ? `${e(before)} ${e(`${t.model}@${champ.version}`)}` : e(before)} |`, '|---|---|---|');
      for (const m of metrics.sort())
        out.push(`| ${e(m)} | ${e(String(t.metrics![m]))} | ${champ && m in champ.metrics ? e(String(champ.metrics[m])) : '—'} |`);
      out.push('');
    }
    if (t.artifact?.sha256) out.push(`Artifact: sha256 ${e(String(t.artifact.sha256))}, ${e(String(t.artifact.size))} bytes`, '');
  }
  if (d.problems.length) {
    out.push('### Problems', '');
    for (const p of d.problems) out.push(`- ${e(formatProblem(p))}`);
    out.push('');
  }
  if (d.uncovered.length) {
    out.push('### Not covered by any rule', '');
    for (const f of d.uncovered) out.push(`- ${e(f)}`);
    out.push('');
  }
  if (ctx.deployDiff !== undefined) {
    out.push('### What merging changes in deploy/', '', ctx.deployDiff.trim() ? fenced(ctx.deployDiff, 'diff') : 'No deploy pin changes.', '');
  } else if (ctx.deployNote) out.push('### What merging changes in deploy/', '', e(ctx.deployNote), '');
  if (ctx.decisionRecord) {
    out.push('### Decision record', '', e(ctx.decisionRecord.message), '');
    if (ctx.decisionRecord.uri) out.push(fenced(ctx.decisionRecord.uri), '');
  }
  return out.join('\n');
}

/** Every check of one change, its own first, then each rule's. */
function checksTable(t: Transition): string[] {
  const row = (rule: string, c: CheckResult) => `| ${escapeMarkdown(rule)} | ${escapeMarkdown(c.check)} | ${ICON[c.status]} | ${escapeMarkdown(c.detail)} |`;
  return [
    '| rule | check | result | detail |',
    '|---|---|---|---|',
    ...t.checks.map((c) => row('(change)', c)),
    ...t.rules.flatMap((r) => r.results.map((c) => row(r.rule, c))),
  ];
}

function statusOf(t: Transition): 'pass' | 'fail' | 'pending' {
  const all = [...t.checks, ...t.rules.flatMap((r) => r.results)];
  if (all.some((c) => c.status === 'fail')) return 'fail';
  if (all.some((c) => c.status === 'pending')) return 'pending';
  return 'pass';
}

/** The report `modelgate check` prints. */
export function renderText(d: Decision): string {
  const mark = { pass: 'ok  ', fail: 'FAIL', pending: 'WAIT' } as const;
  const out: string[] = [];
  for (const t of d.transitions) {
    out.push(`${mark[statusOf(t)]} ${describeTransition(t)}  (${t.file})`);
    for (const c of t.checks) out.push(`     ${mark[c.status]} ${c.check}: ${c.detail}`);
    for (const r of t.rules) for (const c of r.results) out.push(`     ${mark[c.status]} [${r.rule}] ${c.check}: ${c.detail}`);
  }
  for (const p of d.problems) out.push(`FAIL ${formatProblem(p)}`);
  for (const f of d.uncovered) out.push(`FAIL ${f}: not covered by any rule`);
  out.push(`${d.decision}: ${d.summary}`);
  return out.join('\n') + '\n';
}

/**
 * The body of a promotion pull request: what a reviewer needs, from the gate's own evaluation
 * with no approval given yet (so "who must approve" is exactly what the gate will ask for).
 */
export function renderPromotionBody(d: Decision, versions: ModelVersion[], intro: string): string {
  const e = escapeMarkdown;
  const out: string[] = [e(intro), ''];
  for (const t of d.transitions) {
    const v = versions.find((x) => x.model === t.model && x.version === t.version);
    out.push(`### ${e(describeTransition(t))}`, '');
    if (v) {
      out.push(`- artifact: ${e(v.artifact.uri)}`, `- sha256: ${e(v.artifact.sha256)} (${v.artifact.size} bytes)`);
      if (v.lineage?.code?.commit) out.push(`- code: ${e(v.lineage.code.repository ?? '')} @ ${e(v.lineage.code.commit)}`);
      for (const ds of v.lineage?.data ?? []) out.push(`- data: ${e(ds.id)}${ds.sha256 ? ` (sha256 ${e(ds.sha256)})` : ''}`);
      if (v.lineage?.run?.id) out.push(`- run: ${e(v.lineage.run.id)}${v.lineage.run.url ? ` ${e(v.lineage.run.url)}` : ''}`);
      out.push('');
    }
    const metrics = Object.keys(t.metrics ?? {}).sort();
    if (metrics.length) {
      const thresholds = new Map<string, string>();
      for (const r of t.rules)
        for (const c of r.results) {
          const m = /^metric (\S+) (.*)$/.exec(c.check);
          if (m) thresholds.set(m[1]!, `${thresholds.get(m[1]!) ? `${thresholds.get(m[1]!)}, ` : ''}${m[2]} ${c.ok ? '✅' : '❌'}`);
        }
      out.push(`| metric | value | threshold | champion${t.champion ? ` (v${t.champion.version})` : ''} |`, '|---|---|---|---|');
      for (const m of metrics) {
        const champ = t.champion?.metrics[m];
        // Metric values are numbers (the schema says so): nothing in them needs escaping.
        out.push(`| ${e(m)} | ${t.metrics![m]} | ${e(thresholds.get(m) ?? '—')} | ${champ ?? '—'} |`);
      }
      out.push('');
    }
    out.push(...checksTable(t), '');
  }
  out.push(...renderVerdict(d), '_Opened by modelgate; the modelgate status on this pull request is the gate._');
  return out.join('\n');
}

/**
 * A pull request body's verdict sections: who must approve (the approvals the gate finds
 * missing), and what will fail the gate, at most `limit` lines of it (the rest counted).
 */
export function renderVerdict(d: Decision, limit = Infinity): string[] {
  const e = escapeMarkdown;
  const approvals = d.transitions.flatMap((t) => t.rules.flatMap((r) => r.results.filter((c) => c.missing).map((c) => `${r.rule}: ${c.missing}`)));
  const out = [
    '### Who must approve',
    '',
    ...(approvals.length ? [...new Set(approvals)].map((a) => `- ${e(a)}`) : ['- no approval is required by the policy']),
    '',
  ];
  const failing = d.transitions.flatMap((t) => [...t.checks, ...t.rules.flatMap((r) => r.results)]).filter((c) => c.status === 'fail');
  const lines = [
    ...failing.map((c) => `- ${e(`${c.check}: ${c.detail}`)}`),
    ...d.problems.map((p) => `- ${e(formatProblem(p))}`),
    ...d.uncovered.map((f) => `- ${e(f)}: not covered by any rule`),
  ];
  if (lines.length) {
    const more = lines.length > limit ? [`- … and ${lines.length - limit} more`] : [];
    out.push('### ❌ The gate will fail', '', ...lines.slice(0, limit), ...more, '');
  }
  return out;
}
