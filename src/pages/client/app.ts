/**
 * The pages' script (bundled by `npm run build` into dist/pages-assets/app.js with uPlot and the
 * CLI's `--where` parser): charts, sorting and filtering the versions table, the compare
 * selection, "what was in Production at", and search over the index's model files. Everything it adds
 * is an enhancement of server-rendered HTML.
 */
import uPlot from 'uplot';
import type { ModelVersion } from '../../manifest/types.js';
import { matchWhere, parseWhere } from '../../query/where.js';
import type { ChartData } from '../render.js';
import { shardMayMatch, type SearchIndex } from '../search-index.js';

const $$ = <T extends Element>(sel: string, root: ParentNode = document) => [...root.querySelectorAll<T>(sel)];
const rootPath = () =>
  document
    .querySelector<HTMLLinkElement>('link[rel=stylesheet]')!
    .getAttribute('href')!
    .replace(/assets\/app\.css$/, '');

function charts(): void {
  const colors = ['#b3261e', '#6a4c93', '#1b7f3b', '#a15c00'];
  $$<HTMLElement>('figure[data-chart]').forEach((fig, i) => {
    const data = JSON.parse(document.getElementById(`chart-data-${i}`)!.textContent) as ChartData;
    const target = fig.querySelector<HTMLElement>('.chart-canvas')!;
    const series: uPlot.Series[] = [
      { label: 'version' },
      { label: data.metric, stroke: '#1f5fa8', width: 2, points: { show: true, size: 6 } },
      ...data.thresholds.map((t, k) => ({ label: t.label, stroke: colors[k % colors.length], dash: [6, 4], width: 1.5, points: { show: false } })),
    ];
    const columns: uPlot.AlignedData = [data.versions, data.values, ...data.thresholds.map((t) => data.versions.map(() => t.value))];
    new uPlot(
      { width: Math.min(560, target.clientWidth || 560), height: 220, series, axes: [{ label: 'version' }, {}], scales: { x: { time: false } } },
      columns,
      target,
    );
    target.dataset.series = String(series.length - 1);
    target.dataset.thresholds = String(data.thresholds.length);
  });
}

function sortable(): void {
  for (const table of $$<HTMLTableElement>('table.sortable')) {
    const headers = $$<HTMLTableCellElement>('th[data-sort]', table);
    for (const th of headers) {
      const label = th.textContent ?? '';
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'sort';
      button.textContent = label;
      th.textContent = '';
      th.append(button);
      button.addEventListener('click', () => {
        const index = th.cellIndex;
        const ascending = th.getAttribute('aria-sort') !== 'ascending';
        headers.forEach((h) => h.removeAttribute('aria-sort'));
        th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
        const numeric = th.dataset.sort === 'number';
        const body = table.tBodies[0]!;
        const rows = [...body.rows];
        const key = (r: HTMLTableRowElement) => r.cells[index]?.dataset.value ?? r.cells[index]?.textContent ?? '';
        rows.sort((a, b) => {
          const [x, y] = [key(a), key(b)];
          const order = numeric ? (x === '' ? -Infinity : Number(x)) - (y === '' ? -Infinity : Number(y)) : x.localeCompare(y);
          return ascending ? order : -order;
        });
        body.append(...rows);
      });
    }
  }
}

function whereFilter(): void {
  const input = document.querySelector<HTMLInputElement>('input[data-where]');
  const dataEl = document.getElementById('versions-data');
  if (!input || !dataEl) return;
  const versions = new Map((JSON.parse(dataEl.textContent) as ModelVersion[]).map((v) => [String(v.version), v]));
  const output = input.form!.querySelector('output')!;
  input.addEventListener('input', () => {
    let keep: (v: ModelVersion) => boolean = () => true;
    output.textContent = '';
    if (input.value.trim()) {
      try {
        const expr = parseWhere(input.value);
        keep = (v) => matchWhere(expr, v);
      } catch (e) {
        output.textContent = (e as Error).message;
        return;
      }
    }
    for (const row of $$<HTMLTableRowElement>('#versions-table tbody tr')) {
      const v = versions.get(row.dataset.version!);
      row.hidden = v !== undefined && !keep(v);
    }
  });
}

function compareSelection(): void {
  const table = document.getElementById('compare-table');
  if (!table) return;
  const wanted = new URLSearchParams(location.search).getAll('v');
  if (wanted.length === 0) return;
  for (const cell of $$<HTMLElement>('[data-v]', table)) cell.hidden = !wanted.includes(cell.dataset.v!);
  for (const th of $$<HTMLTableCellElement>('tr.section th', table)) th.colSpan = wanted.length + 1;
  // Which rows differ, among the versions shown.
  for (const row of $$<HTMLTableRowElement>('tbody tr:not(.section)', table)) {
    const shown = $$<HTMLTableCellElement>('td[data-v]', row).filter((c) => !c.hidden);
    row.classList.toggle('differs', new Set(shown.map((c) => c.textContent)).size > 1);
  }
  document.querySelector('[data-compare-note]')!.textContent = `Versions ${wanted.sort((a, b) => Number(a) - Number(b)).join(', ')}.`;
}

function productionAt(): void {
  const form = document.querySelector<HTMLFormElement>('form[data-at-form]');
  if (!form) return;
  const input = form.querySelector('input')!;
  const answer = form.querySelector('output')!;
  // The table lists the changes newest first, in history order (several may share a second).
  const changes = $$<HTMLTableRowElement>('table.timeline tbody tr[data-kind=stage]')
    .map((r) => ({ version: Number(r.dataset.version), to: r.dataset.to, date: Date.parse(r.dataset.date!) }))
    .reverse();
  const update = () => {
    const at = Date.parse(`${input.value}Z`);
    if (Number.isNaN(at)) return;
    const inProduction = new Set<number>();
    for (const c of changes) {
      if (c.date > at) break;
      if (c.to === 'Production') inProduction.add(c.version);
      else inProduction.delete(c.version);
    }
    answer.textContent = inProduction.size ? `v${[...inProduction].join(', v')}` : 'nothing';
  };
  input.addEventListener('change', update);
  input.addEventListener('input', update);
}

async function search(): Promise<void> {
  const input = document.querySelector<HTMLInputElement>('input[data-search]');
  if (!input) return;
  const query = new URLSearchParams(location.search).get('q') ?? '';
  input.value = query;
  const results = document.getElementById('search-results')!;
  const error = document.getElementById('search-error')!;
  // serve answered the query already; the static site leaves it to this script.
  if (!query.trim() || results.hasAttribute('data-answered')) return;
  let expr;
  try {
    expr = parseWhere(query);
  } catch (e) {
    error.textContent = (e as Error).message;
    return;
  }
  const root = rootPath();
  // The summary first, then only the models whose versions may match.
  const index = (await (await fetch(`${root}search/index.json`)).json()) as SearchIndex;
  const shards = index.shards.filter((s) => shardMayMatch(expr, s));
  const files = await Promise.all(shards.map(async (s) => (await (await fetch(`${root}search/${s.file}`)).json()) as ModelVersion[]));
  const found = files.flat().filter((v) => matchWhere(expr, v));
  results.dataset.searched = shards.map((s) => s.model).join(' ');
  const table = document.createElement('table');
  table.className = 'results';
  table.innerHTML =
    '<thead><tr><th scope="col">Version</th><th scope="col">Stage</th><th scope="col">Created</th><th scope="col">Metrics</th></tr></thead><tbody></tbody>';
  for (const v of found) {
    const row = table.tBodies[0]!.insertRow();
    const link = document.createElement('a');
    link.href = `${root}models/${v.model}/versions/${v.version}/`;
    link.textContent = `${v.model}@${v.version}`;
    row.insertCell().append(link);
    row.insertCell().textContent = v.stage;
    row.insertCell().textContent = v.createdAt.slice(0, 16).replace('T', ' ');
    row.insertCell().textContent = Object.entries(v.metrics ?? {})
      .map(([k, n]) => `${k}=${n}`)
      .join(' ');
  }
  const count = document.createElement('p');
  count.textContent = `${found.length} versions match.`;
  results.replaceChildren(count, table);
}

/** `/` focuses the page's filter or search field, as on GitHub. */
function keyboard(): void {
  document.addEventListener('keydown', (e) => {
    if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey) return;
    const target = e.target as HTMLElement;
    if (target.closest('input, textarea, select')) return;
    const field = ['input[data-where]', 'input[data-search]', '#top-q'].map((sel) => document.querySelector<HTMLInputElement>(sel)).find((f) => f !== null);
    if (field) {
      e.preventDefault();
      field.focus();
    }
  });
}

charts();
sortable();
whereFilter();
compareSelection();
productionAt();
keyboard();
void search();
