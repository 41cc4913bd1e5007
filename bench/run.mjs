// Runs every benchmark of the project (bench/*.bench.mjs, each exporting `run()` that returns
// rows) and prints one table: figure, target, ratio, pass/miss. A row with a `baseline` (the
// same lookup by git, `node -e 0`, … measured in the same run) is judged on value ÷ baseline
// against its `target` ratio; its absolute times are printed for information only.
// `node bench/run.mjs registry` runs one suite. A benchmark that cannot run
// says why instead of printing nothing. Targets are ratios or budgets on this machine, never
// assertions in the test suite.
import { readdir } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const files = (await readdir(here)).filter((f) => f.endsWith('.bench.mjs') && (only.length === 0 || only.some((o) => f.includes(o)))).sort();

const rows = [];
for (const file of files) {
  const suite = file.replace(/\.bench\.mjs$/, '');
  process.stderr.write(`bench: ${suite} …\n`);
  try {
    const mod = await import(pathToFileURL(join(here, file)).href);
    for (const row of await mod.run()) rows.push({ suite, ...row });
  } catch (e) {
    rows.push({ suite, name: '(could not run)', note: String(e?.message ?? e).split('\n')[0] });
  }
}

const fmt = (v, unit) =>
  v === undefined ? '' : `${typeof v === 'number' ? (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3)) : v}${unit ? ' ' + unit : ''}`;
const table = [['suite', 'figure', 'value', 'target', 'ratio', 'result']];
for (const r of rows) {
  if (r.value === undefined) {
    table.push([r.suite, r.name, '—', '—', '—', `not run: ${r.note ?? r.skipped ?? 'unknown reason'}`]);
    continue;
  }
  if (r.baseline !== undefined) {
    // A ratio to a baseline measured in the same run: the load of the machine weighs on both.
    const ratio = r.value / r.baseline;
    table.push([
      r.suite,
      `${r.name} ÷ ${r.baselineName}`,
      `${fmt(r.value, r.unit)} / ${fmt(r.baseline, r.unit)}`,
      r.target === undefined ? '' : `≤ ${r.target}×`,
      `${ratio.toFixed(2)}×`,
      r.target === undefined ? 'info' : ratio <= r.target ? 'pass' : 'MISS',
    ]);
    continue;
  }
  const ratio = typeof r.target === 'number' && r.target !== 0 ? (r.value / r.target).toFixed(2) : '';
  table.push([
    r.suite,
    r.name,
    fmt(r.value, r.unit),
    r.target === undefined ? '' : `${r.atLeast ? '≥' : '≤'} ${fmt(r.target, r.targetUnit ?? r.unit)}`,
    ratio,
    r.pass === undefined ? 'info' : r.pass ? 'pass' : 'MISS',
  ]);
}
const widths = table[0].map((_, i) => Math.max(...table.map((r) => String(r[i]).length)));
const line = (r) => '| ' + r.map((c, i) => String(c).padEnd(widths[i])).join(' | ') + ' |';
console.log(line(table[0]));
console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
for (const r of table.slice(1)) console.log(line(r));
