/**
 * The registry pages as HTML strings (SPEC v3 §11), from the read models of read-model.ts. Every
 * page works with JavaScript off except the charts (a table of the same numbers stands beside
 * them); links are relative, so the static site works under any base path, and URLs are stable
 * (`models/fraud/versions/3/`). Pure.
 */
import type { ModelVersion, Stage } from '../manifest/types.js';
import { flattenLineage, formatNumber, shortTime, signatureRows } from '../query/present.js';
import { html, jsonScript, type Html } from './html.js';
import { lineageGraph, renderLineageSvg } from './lineage-graph.js';
import type { OpenPromotions } from './open-pull-requests.js';
import { searchEntry } from './search-index.js';
import type { DecisionView, ModelSummary, ModelView, TimelineEntry, VersionView } from './read-model.js';

/** Versions per page of a model's table. */
export const PAGE_SIZE = 50;

export interface PageContext {
  /** Relative path from the page to the site's root, ending in `/` (`''` at the root, `../../` two folders down). */
  root: string;
  /** What the pages were built from, shown in the footer. */
  generatedFrom: string;
}

/** The site's paths, relative to its root, each a folder holding `index.html`. */
export const sitePaths = {
  index: () => '',
  search: () => 'search/',
  model: (m: string, page = 1) => (page === 1 ? `models/${m}/` : `models/${m}/page/${page}/`),
  version: (m: string, v: number) => `models/${m}/versions/${v}/`,
  compare: (m: string) => `models/${m}/compare/`,
};

/** How deep a site path is: the `root` of its page. */
export function rootOf(path: string): string {
  return '../'.repeat(path.split('/').filter(Boolean).length);
}

function layout(ctx: PageContext, title: string, crumbs: Array<[string, string?]>, body: Html, scripts = true): string {
  return `<!doctype html>\n${
    html`<html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${title} · modelgate</title>
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href="${ctx.root}assets/app.css" />
      </head>
      <body>
        <a class="skip" href="#main">Skip to content</a>
        <header class="top">
          <nav aria-label="Breadcrumb">
            <ol class="crumbs">
              ${crumbs.map(([label, href]) => html`<li>${href !== undefined ? html`<a href="${ctx.root}${href}">${label}</a>` : html`<span aria-current="page">${label}</span>`}</li>`)}
            </ol>
          </nav>
          <form class="top-search" role="search" action="${ctx.root}search/" method="get">
            <label for="top-q">Search versions</label>
            <input id="top-q" name="q" type="search" placeholder="metrics.auc &gt; 0.9 and stage = 'Production'" accesskey="s" />
            <button type="submit">Search</button>
          </form>
        </header>
        <main id="main" tabindex="-1">${body}</main>
        <footer class="foot">modelgate registry pages · ${ctx.generatedFrom}</footer>
        ${scripts ? html`<script src="${ctx.root}assets/app.js" defer></script>` : ''}
      </body>
    </html>`.text
  }\n`;
}

function stageBadge(stage: Stage, label: string = stage): Html {
  return html`<span class="badge stage-${stage.toLowerCase()}">${label}</span>`;
}

function aliasBadge(alias: string, version?: number): Html {
  return html`<span class="badge alias" data-alias="${alias}">@${alias}${version === undefined ? '' : ` v${version}`}</span>`;
}

function badges(s: ModelSummary): Html {
  const shown = (['Production', 'Staging'] as const).filter((st) => s.stages[st].length > 0);
  return html`${shown.map((st) => stageBadge(st, `${st} v${s.stages[st].join(', v')}`))}${Object.entries(s.aliases).map(([a, v]) => aliasBadge(a, v))}${
    s.retired ? html`<span class="badge retired">retired</span>` : ''
  }`;
}

function serving(s: ModelSummary, ctx: PageContext): Html {
  return html`<ul class="serving">
    ${s.serving.map(
      (e) =>
        html`<li>
          <span class="env">${e.environment}</span> ${
            e.version !== undefined
              ? html`<a href="${ctx.root}${sitePaths.version(s.name, e.version)}">v${e.version}</a>`
              : html`<span class="muted">nothing pinned</span>`
          }
        </li>`,
    )}
  </ul>`;
}

/** What moved: `Staging → Production` for a stage, `v2 → v3` for an alias. */
function change(t: TimelineEntry): string {
  if (t.kind === 'stage') return `${t.from ?? '(new)'} → ${t.to ?? '(removed)'}`;
  return `${t.from === null ? '(unset)' : `v${t.from}`} → ${t.to === null ? '(deleted)' : `v${t.to}`}`;
}

/** What a change is about: the version (`v3`) or the alias (`@champion`). */
function subjectOf(t: TimelineEntry): string {
  return t.kind === 'stage' ? `v${t.version}` : `@${t.alias}`;
}

/** The open promotion pull requests (serve only), and where the list comes from. */
function openPromotionsSection(open: OpenPromotions | undefined, ctx: PageContext, withModel: boolean): Html {
  if (!open) return html``;
  const from =
    open.source === 'github' ? "from GitHub's open pull requests" : "from the remote's open modelgate/* branches (serve has no GitHub repository and token)";
  const what = (p: OpenPromotions['promotions'][number]): string => {
    const s = p.spec;
    if (s.kind === 'sync') return 'repair the deploy pins';
    if (s.kind === 'alias') return `move @${s.alias}`;
    if (s.kind === 'register') return `register v${s.version}`;
    if (s.kind === 'annotate') return `annotate v${s.version}`;
    if (s.kind === 'model') return 'edit the model';
    return `v${s.version} to ${s.stage}`;
  };
  return titled(
    'open',
    'Open promotion pull requests',
    html`<p class="muted" data-open-source="${open.source}">Listed ${from}.</p>
      ${
        open.unavailable
          ? html`<p><span class="badge warn">unavailable</span> GitHub did not answer; the list is not shown.</p>`
          : open.promotions.length === 0
            ? html`<p class="muted">None open.</p>`
            : html`<ul class="open-promotions">
                ${open.promotions.map(
                  (p) =>
                    html`<li data-branch="${p.branch}">
                      ${p.url ? html`<a href="${p.url}">#${p.number}</a> ${p.title}` : html`<code>${p.branch}</code>`}
                      <span class="muted"
                        >(${withModel && p.spec.kind !== 'sync' ? html`<a href="${ctx.root}${sitePaths.model(p.spec.model)}">${p.spec.model}</a> ` : ''}${what(p)}${
                          p.author ? `, by ${p.author}` : ''
                        })</span
                      >
                    </li>`,
                )}
              </ul>`
      }`,
  );
}

/** `/`: every model with its badges, owners, what each environment serves and its last change; `open` (serve) the open promotions. */
export function renderIndex(models: ModelSummary[], ctx: PageContext, open?: OpenPromotions): string {
  const body = html`<h1>Models</h1>
    <p>${models.length} models, ${models.reduce((n, m) => n + m.versionCount, 0)} versions.</p>
    <table class="models">
      <caption class="visually-hidden">
        Models of the registry
      </caption>
      <thead>
        <tr>
          <th scope="col">Model</th>
          <th scope="col">Stages</th>
          <th scope="col">Owners</th>
          <th scope="col">Serving now</th>
          <th scope="col">Last change</th>
          <th scope="col">Versions</th>
        </tr>
      </thead>
      <tbody>
        ${models.map(
          (m) =>
            html`<tr data-model="${m.name}">
              <th scope="row">
                <a href="${ctx.root}${sitePaths.model(m.name)}">${m.name}</a>${m.description ? html`<div class="muted">${m.description}</div>` : ''}
              </th>
              <td>${badges(m)}</td>
              <td>${m.owners.join(', ')}</td>
              <td>${serving(m, ctx)}</td>
              <td>
                ${m.lastChange ? html`<time datetime="${m.lastChange.date}">${shortTime(m.lastChange.date)}</time> ${subjectOf(m.lastChange)} ${change(m.lastChange)}` : ''}
              </td>
              <td class="num">${m.versionCount}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${openPromotionsSection(open, ctx, true)}`;
  return layout(ctx, 'Models', [['Models']], body);
}

function metricNames(versions: readonly ModelVersion[]): string[] {
  const names = new Set<string>();
  for (const v of versions) for (const k of Object.keys(v.metrics ?? {})) names.add(k);
  return [...names];
}

/** Data a chart needs, as the page embeds it: versions on x, one series per metric, the thresholds as lines. */
export interface ChartData {
  metric: string;
  versions: number[];
  values: Array<number | null>;
  thresholds: Array<{ label: string; value: number }>;
}

function charts(view: ModelView): Html {
  const names = metricNames(view.versions);
  if (names.length === 0) return html``;
  const data: ChartData[] = names.map((metric) => ({
    metric,
    versions: view.versions.map((v) => v.version),
    values: view.versions.map((v) => v.metrics?.[metric] ?? null),
    thresholds: view.thresholds
      .filter((t) => t.metric === metric)
      .flatMap((t) => [
        ...(t.min !== undefined ? [{ label: `min ${formatNumber(t.min)} (${t.rule})`, value: t.min }] : []),
        ...(t.max !== undefined ? [{ label: `max ${formatNumber(t.max)} (${t.rule})`, value: t.max }] : []),
      ]),
  }));
  return html`<section aria-labelledby="charts-h">
    <h2 id="charts-h">Metrics across versions</h2>
    <div class="charts">
      ${data.map(
        (d, i) =>
          html`<figure class="chart" data-chart="${d.metric}">
            <figcaption>
              ${d.metric}${d.thresholds.length ? html` <span class="muted">(thresholds: ${d.thresholds.map((t) => t.label).join('; ')})</span>` : ''}
            </figcaption>
            <div class="chart-canvas" id="chart-${i}" role="img" aria-label="${`${d.metric} for versions ${d.versions[0]}–${d.versions.at(-1)}`}">
              <noscript>The chart needs JavaScript; the versions table below lists every value.</noscript>
            </div>
            ${jsonScript(`chart-data-${i}`, d)}
          </figure>`,
      )}
    </div>
  </section>`;
}

function decisionCell(d: DecisionView): Html {
  switch (d.status) {
    case 'verified':
      return html`<span class="badge ok" title="signature verified against trust.keys (key ${d.keyid})">verified</span> ${
          d.approvers.length
            ? html`<ul class="approvers">
                ${d.approvers.map((a) => html`<li>${a.login} <span class="muted">(${a.rule ? `${a.rule}, ` : ''}group ${a.group + 1}${a.team ? `, team ${a.team}` : ''})</span></li>`)}
              </ul>`
            : html`<span class="muted">no approvals required</span>`
        }`;
    case 'not-a-pull-request':
      return html`<span class="muted">not a pull request</span>`;
    case 'unavailable':
      return html`<span class="badge warn">store unavailable</span>`;
    default:
      return html`<span class="badge bad" title="${d.reason}">${d.status === 'none' ? 'no record' : d.status}</span>`;
  }
}

function prLink(n: number | null, repository: string | undefined): Html | string {
  if (n === null) return '';
  return repository ? html`<a href="${`https://github.com/${repository}/pull/${n}`}">#${n}</a>` : `#${n}`;
}

function timelineTable(timeline: TimelineEntry[], model: string, ctx: PageContext, repository: string | undefined): Html {
  if (timeline.length === 0) return html`<p class="muted">No committed stage or alias changes.</p>`;
  return html`<table class="timeline">
    <thead>
      <tr>
        <th scope="col">Date</th>
        <th scope="col">Version or alias</th>
        <th scope="col">Change</th>
        <th scope="col">By</th>
        <th scope="col">Commit</th>
        <th scope="col">Pull request</th>
        <th scope="col">Approvers (decision record)</th>
      </tr>
    </thead>
    <tbody>
      ${[...timeline].reverse().map(
        (t) =>
          html`<tr data-kind="${t.kind}" data-version="${t.kind === 'stage' ? t.version : (t.to ?? '')}" data-to="${t.to ?? ''}" data-date="${t.date}">
            <td><time datetime="${t.date}">${shortTime(t.date)}</time></td>
            <td>${t.kind === 'stage' ? html`<a href="${ctx.root}${sitePaths.version(model, t.version)}">v${t.version}</a>` : aliasBadge(t.alias)}</td>
            <td>
              ${
                t.kind === 'stage'
                  ? change(t)
                  : html`${t.from === null ? '(unset)' : html`<a href="${ctx.root}${sitePaths.version(model, t.from)}">v${t.from}</a>`} →
                    ${t.to === null ? '(deleted)' : html`<a href="${ctx.root}${sitePaths.version(model, t.to)}">v${t.to}</a>`}`
              }
            </td>
            <td>${t.author}</td>
            <td><code>${t.commit.slice(0, 10)}</code></td>
            <td>${prLink(t.pullRequest, repository)}</td>
            <td>${decisionCell(t.decision)}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

/** A model: badges, charts with thresholds, one page of its versions (newest first), its timeline, and (serve) its open promotions. */
export function renderModel(view: ModelView, page: number, ctx: PageContext, repository?: string, open?: OpenPromotions): string {
  const s = view.summary;
  const pages = Math.max(1, Math.ceil(view.versions.length / PAGE_SIZE));
  const newestFirst = [...view.versions].reverse();
  const shown = newestFirst.slice((page - 1) * PAGE_SIZE, page * PAGE_SIZE);
  const metrics = metricNames(view.versions);
  const pager =
    pages > 1
      ? html`<nav class="pager" aria-label="Pages of versions">
          <ul>
            ${Array.from({ length: pages }, (_, i) => i + 1).map((p) =>
              p === page ? html`<li><span aria-current="page">${p}</span></li>` : html`<li><a href="${ctx.root}${sitePaths.model(s.name, p)}">${p}</a></li>`,
            )}
          </ul>
        </nav>`
      : '';
  const body = html`<h1>${s.name}</h1>
    ${s.description ? html`<p>${s.description}</p>` : ''}
    <dl class="facts">
      <dt>Stages</dt>
      <dd>${badges(s)}</dd>
      <dt>Owners</dt>
      <dd>${s.owners.join(', ') || '—'}</dd>
      <dt>Serving now</dt>
      <dd>${serving(s, ctx)}</dd>
      <dt>Last change</dt>
      <dd>
        ${s.lastChange ? html`<time datetime="${s.lastChange.date}">${shortTime(s.lastChange.date)}</time> ${subjectOf(s.lastChange)} ${change(s.lastChange)} by ${s.lastChange.author}` : '—'}
      </dd>
    </dl>
    ${charts(view)}
    <section aria-labelledby="versions-h">
      <h2 id="versions-h">Versions</h2>
      <form class="filter" role="search" data-filter-for="versions-table" onsubmit="return false">
        <label for="where">Filter (list --where)</label> <input id="where" type="search" placeholder="metrics.auc &gt; 0.9" data-where />
        <output class="where-error" for="where" role="status"></output>
      </form>
      <form action="${ctx.root}${sitePaths.compare(s.name)}" method="get">
        <table class="versions sortable" id="versions-table">
          <caption class="visually-hidden">
            Versions of ${s.name}, newest first${pages > 1 ? `, page ${page} of ${pages}` : ''}
          </caption>
          <thead>
            <tr>
              <th scope="col">Compare</th>
              <th scope="col" data-sort="number" aria-sort="descending">Version</th>
              <th scope="col" data-sort="text">Stage</th>
              <th scope="col" data-sort="text">Created</th>
              <th scope="col" data-sort="text">By</th>
              ${metrics.map((m) => html`<th scope="col" data-sort="number">${m}</th>`)}
            </tr>
          </thead>
          <tbody>
            ${shown.map(
              (v) =>
                html`<tr data-version="${v.version}">
                  <td><input type="checkbox" name="v" value="${v.version}" aria-label="${`compare v${v.version}`}" /></td>
                  <td data-value="${v.version}"><a href="${ctx.root}${sitePaths.version(s.name, v.version)}">v${v.version}</a></td>
                  <td data-value="${v.stage}">${stageBadge(v.stage)}</td>
                  <td data-value="${v.createdAt}"><time datetime="${v.createdAt}">${shortTime(v.createdAt)}</time></td>
                  <td>${v.createdBy ?? ''}</td>
                  ${metrics.map((m) => html`<td class="num" data-value="${v.metrics?.[m] ?? ''}">${v.metrics?.[m] === undefined ? '' : formatNumber(v.metrics[m])}</td>`)}
                </tr>`,
            )}
          </tbody>
        </table>
        <p><button type="submit">Compare selected versions</button></p>
      </form>
      ${pager} ${jsonScript('versions-data', shown.map(searchEntry))}
    </section>
    <section aria-labelledby="timeline-h">
      <h2 id="timeline-h">Stage and alias changes</h2>
      <form class="at" data-at-form onsubmit="return false">
        <label for="at">What was in Production at</label> <input id="at" type="datetime-local" step="1" />
        <output for="at" role="status" data-at-answer></output>
      </form>
      ${timelineTable(view.timeline, s.name, ctx, repository)}
    </section>
    ${openPromotionsSection(open, ctx, false)}`;
  return layout(ctx, s.name, [['Models', ''], [s.name]], body);
}

/** A page section headed by an h2 that labels it (`<id>-h`). */
function titled(id: string, title: string, content: Html): Html {
  return html`<section aria-labelledby="${id}-h">
    <h2 id="${id}-h">${title}</h2>
    ${content}
  </section>`;
}

function kvTable(caption: string, rows: Array<[string, string | Html]>, id: string): Html {
  if (rows.length === 0) return html`<p class="muted">No ${caption.toLowerCase()}.</p>`;
  return html`<table class="kv" id="${id}">
    <caption class="visually-hidden">
      ${caption}
    </caption>
    <tbody>
      ${rows.map(
        ([k, v]) =>
          html`<tr>
            <th scope="row">${k}</th>
            <td>${v}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

function decisionRecords(view: VersionView, ctx: PageContext, repository: string | undefined): Html {
  const entries = view.timeline.filter((t) => t.pullRequest !== null);
  if (entries.length === 0) return html`<p class="muted">No stage or alias change of this version came through a pull request.</p>`;
  return html`${entries.map((t) => {
    const d = t.decision;
    return html`<article class="decision" data-decision="${d.status}">
      <h3>
        ${t.kind === 'alias' ? `@${t.alias} ` : ''}${change(t)} · ${prLink(t.pullRequest, repository)} · <time datetime="${t.date}">${shortTime(t.date)}</time>
      </h3>
      ${
        d.status === 'verified'
          ? html`<p>
                ${decisionCell(d)}
                <span class="muted">signed by key <code>${d.keyid}</code>, decided <time datetime="${d.time}">${shortTime(d.time)}</time></span>
              </p>
              <table class="checks">
                <caption>
                  Rules and checks
                </caption>
                <thead>
                  <tr>
                    <th scope="col">Kind</th>
                    <th scope="col">Result</th>
                    <th scope="col">Details</th>
                  </tr>
                </thead>
                <tbody>
                  ${d.rules.map(
                    (r) =>
                      html`<tr>
                        <td>rule ${r.name}</td>
                        <td>${r.passed ? 'passed' : 'failed'}</td>
                        <td><code>${r.details === undefined ? '' : JSON.stringify(r.details)}</code></td>
                      </tr>`,
                  )}
                  ${d.checks.map(
                    (c) =>
                      html`<tr data-check="${c.kind}">
                        <td>${c.kind}</td>
                        <td>${c.passed ? 'passed' : 'failed'}</td>
                        <td><code>${c.details === undefined ? '' : JSON.stringify(c.details)}</code></td>
                      </tr>`,
                  )}
                </tbody>
              </table>`
          : html`<p>${decisionCell(d)}${'reason' in d ? html` <span class="muted">${d.reason}</span>` : ''}</p>`
      }
    </article>`;
  })}${html`<p class="muted"><a href="${ctx.root}${sitePaths.model(view.summary.name)}#timeline-h">The model's stage and alias changes</a></p>`}`;
}

function scanFindings(view: VersionView): Html {
  const scans = view.timeline.flatMap((t) => (t.decision.status === 'verified' ? t.decision.checks.filter((c) => /scan/i.test(c.kind)) : []));
  if (scans.length === 0) return html`<p class="muted">No scan recorded for this version.</p>`;
  return html`<ul>
    ${scans.map((c) => html`<li>${c.kind}: ${c.passed ? 'passed' : 'failed'} <code>${c.details === undefined ? '' : JSON.stringify(c.details)}</code></li>`)}
  </ul>`;
}

/** A version: metrics, parameters, signature, lineage graph, artifact, scans and decision records. */
export function renderVersion(view: VersionView, ctx: PageContext, repository?: string): string {
  const v = view.version;
  const name = `${v.model}@${v.version}`;
  const graph = lineageGraph(v, view.servedIn);
  const files = v.artifact.files ?? [];
  const body = html`<h1>${name} ${stageBadge(v.stage)}${view.aliases.map((a) => aliasBadge(a))}</h1>
    ${v.description ? html`<p>${v.description}</p>` : ''}
    <dl class="facts">
      <dt>Created</dt>
      <dd><time datetime="${v.createdAt}">${shortTime(v.createdAt)}</time>${v.createdBy ? ` by ${v.createdBy}` : ''}</dd>
      <dt>Format</dt>
      <dd>${v.format}${v.framework ? ` (${v.framework.name}${v.framework.version ? ` ${v.framework.version}` : ''})` : ''}</dd>
      <dt>Serving in</dt>
      <dd>${view.servedIn.join(', ') || '—'}</dd>
    </dl>
    <section aria-labelledby="artifact-h">
      <h2 id="artifact-h">Artifact</h2>
      <dl class="facts">
        <dt>sha256</dt>
        <dd><code id="digest">${v.artifact.sha256}</code></dd>
        <dt>Size</dt>
        <dd>${v.artifact.size.toLocaleString('en-US')} bytes</dd>
        <dt>URI</dt>
        <dd><code>${v.artifact.uri}</code></dd>
        ${
          v.artifact.index
            ? html`<dt>Index</dt>
                <dd>${v.artifact.index.count.toLocaleString('en-US')} files, listed in <code>${v.artifact.index.uri}</code></dd>`
            : ''
        }
      </dl>
      ${
        files.length
          ? html`<table class="files">
              <caption>
                Files
              </caption>
              <thead>
                <tr>
                  <th scope="col">Path</th>
                  <th scope="col">Size</th>
                  <th scope="col">sha256</th>
                </tr>
              </thead>
              <tbody>
                ${files.map(
                  (f) =>
                    html`<tr>
                      <td>${f.path}</td>
                      <td class="num">${f.size.toLocaleString('en-US')}</td>
                      <td><code>${f.sha256}</code></td>
                    </tr>`,
                )}
              </tbody>
            </table>`
          : ''
      }
    </section>
    ${titled(
      'lineage',
      'Lineage',
      html`<div class="graph">${renderLineageSvg(graph)}</div>
        ${kvTable('Lineage', flattenLineage(v.lineage), 'lineage-table')}`,
    )}
    ${titled(
      'metrics',
      'Metrics',
      kvTable(
        'Metrics',
        Object.entries(v.metrics ?? {}).map(([k, n]) => [k, formatNumber(n)]),
        'metrics-table',
      ),
    )}
    ${titled(
      'params',
      'Parameters',
      kvTable(
        'Parameters',
        Object.entries(v.parameters ?? {}).map(([k, p]) => [k, String(p)]),
        'params-table',
      ),
    )}
    ${titled('signature', 'Signature', kvTable('Signature', signatureRows(v.signature), 'signature-table'))}
    ${titled('annotations', 'Annotations', kvTable('Annotations', Object.entries(v.annotations ?? {}), 'annotations-table'))}
    ${titled('scan', 'Scan findings', scanFindings(view))} ${titled('decisions', 'Decision records', decisionRecords(view, ctx, repository))}`;
  return layout(ctx, name, [['Models', ''], [v.model, sitePaths.model(v.model)], [`v${v.version}`]], body);
}

/**
 * Versions side by side: metrics, parameters and lineage, one column per version. `selected`
 * (serve) renders those only; without it every version is rendered and the page's script keeps
 * the columns the query (`?v=2&v=3`) names, so with JavaScript off all of them show.
 */
export function renderCompare(view: ModelView, ctx: PageContext, selected?: readonly number[]): string {
  const s = view.summary;
  const versions = selected ? view.versions.filter((v) => selected.includes(v.version)) : view.versions;
  const rowsOf = (pick: (v: ModelVersion) => Record<string, string>) => {
    const maps = versions.map(pick);
    const keys = [...new Set(maps.flatMap((m) => Object.keys(m)))];
    return keys.map((k) => ({ key: k, values: maps.map((m) => m[k] ?? '—') }));
  };
  const sections: Array<[string, Array<{ key: string; values: string[] }>]> = [
    ['Stage', [{ key: 'stage', values: versions.map((v) => v.stage) }]],
    ['Metrics', rowsOf((v) => Object.fromEntries(Object.entries(v.metrics ?? {}).map(([k, n]) => [k, formatNumber(n)])))],
    ['Parameters', rowsOf((v) => Object.fromEntries(Object.entries(v.parameters ?? {}).map(([k, p]) => [k, String(p)])))],
    ['Lineage', rowsOf((v) => Object.fromEntries(flattenLineage(v.lineage)))],
    ['Artifact', rowsOf((v) => ({ sha256: v.artifact.sha256, size: String(v.artifact.size), format: v.format }))],
  ];
  const body = html`<h1>Compare versions of ${s.name}</h1>
    <p class="muted" data-compare-note>
      ${selected ? `Versions ${selected.join(', ')}.` : 'Every version; select versions on the model page to compare a few.'}
    </p>
    <div class="scroll">
      <table class="compare" id="compare-table">
        <thead>
          <tr>
            <th scope="col">Field</th>
            ${versions.map((v) => html`<th scope="col" data-v="${v.version}"><a href="${ctx.root}${sitePaths.version(s.name, v.version)}">v${v.version}</a></th>`)}
          </tr>
        </thead>
        ${sections.map(
          ([title, rows]) =>
            html`<tbody>
              <tr class="section">
                <th scope="rowgroup" colspan="${versions.length + 1}">${title}</th>
              </tr>
              ${rows.map((r) => {
                const differs = new Set(r.values).size > 1;
                return html`<tr${differs ? html` class="differs"` : ''}><th scope="row">${r.key}</th>${r.values.map((val, i) => html`<td data-v="${versions[i]!.version}">${val}</td>`)}</tr>`;
              })}
            </tbody>`,
        )}
      </table>
    </div>`;
  return layout(ctx, `Compare ${s.name}`, [['Models', ''], [s.name, sitePaths.model(s.name)], ['Compare']], body);
}

/**
 * Search with the `list --where` grammar. The static site has no server: the page's script parses
 * the query with the same parser as the CLI (bundled) and filters the index's model files that may match; `serve`
 * renders the results on the server and passes them here.
 */
export function renderSearch(ctx: PageContext, query = '', results?: ModelVersion[], error?: string): string {
  const body = html`<h1>Search versions</h1>
    <form role="search" method="get" action="${ctx.root}search/" class="search-form">
      <label for="q">Expression (the <code>list --where</code> grammar)</label>
      <input id="q" name="q" type="search" value="${query}" placeholder="metrics.auc &gt; 0.9 and stage = 'Production'" data-search />
      <button type="submit">Search</button>
    </form>
    <p class="muted">
      Fields: <code>metrics.&lt;k&gt;</code>, <code>parameters.&lt;k&gt;</code>, <code>annotations.&lt;k&gt;</code>, <code>lineage.…</code>, <code>model</code>,
      <code>version</code>, <code>stage</code>, <code>createdBy</code>, <code>createdAt</code>; operators = != &lt; &lt;= &gt; &gt;= LIKE ILIKE IN, AND, OR.
    </p>
    <output class="where-error" for="q" role="status" id="search-error">${error ?? ''}</output>
    <div id="search-results" aria-live="polite" ${results ? html` data-answered` : ''}>
      ${
        results
          ? resultsTable(results, ctx)
          : html`<noscript
              ><p>
                In the static site, search runs in the browser. Without JavaScript use <code>modelgate list --where "…"</code> or <code>modelgate serve</code>.
              </p></noscript
            >`
      }
    </div>`;
  return layout(ctx, 'Search', [['Models', ''], ['Search']], body);
}

function resultsTable(results: ModelVersion[], ctx: PageContext): Html {
  return html`<p>${results.length} versions match.</p>
    <table class="results">
      <thead>
        <tr>
          <th scope="col">Version</th>
          <th scope="col">Stage</th>
          <th scope="col">Created</th>
          <th scope="col">Metrics</th>
        </tr>
      </thead>
      <tbody>
        ${results.map(
          (v) =>
            html`<tr>
              <td><a href="${ctx.root}${sitePaths.version(v.model, v.version)}">${v.model}@${v.version}</a></td>
              <td>${stageBadge(v.stage)}</td>
              <td>${shortTime(v.createdAt)}</td>
              <td>
                ${Object.entries(v.metrics ?? {})
                  .map(([k, n]) => `${k}=${formatNumber(n)}`)
                  .join(' ')}
              </td>
            </tr>`,
        )}
      </tbody>
    </table>`;
}

/** What `serve` answers for a path with no page (HTTP 404). */
export function renderNotFound(ctx: PageContext, path: string): string {
  const body = html`<h1>Not found</h1>
    <p>No page at <code>${path}</code>. <a href="${ctx.root}">The models</a></p>`;
  return layout(ctx, 'Not found', [['Models', ''], ['Not found']], body, false);
}

/** What `serve --private-reads` answers for a page asked without a valid bearer token (HTTP 401): browsers send none. */
export function renderTokenNeeded(ctx: PageContext): string {
  const body = html`<h1>A token is needed</h1>
    <p>
      This server was started with <code>--private-reads</code>: every read, the pages too, needs <code>Authorization: Bearer &lt;token&gt;</code>, which a
      browser does not send. Serve the pages without <code>--private-reads</code>, put a proxy that adds the header in front of this server, or publish the
      static site with <code>modelgate pages &lt;out-dir&gt;</code>.
    </p>`;
  return layout(ctx, 'A token is needed', [['A token is needed']], body, false);
}
