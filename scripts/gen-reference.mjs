// Writes docs/reference.md: the manifest and policy reference, generated from schemas/ (every
// field, its type and constraints, whether it is required, its description), an example per
// document kind taken verbatim from registry-template/, the command reference taken from the CLI
// itself, and the catalog of error codes from src/error-codes.ts. test/reference.test.ts
// regenerates it and fails when the committed file differs.
//
//   node scripts/gen-reference.mjs           write docs/reference.md
//   node scripts/gen-reference.mjs --check   exit 1 when docs/reference.md is out of date
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const REFERENCE_FILE = 'docs/reference.md';

/** The five document kinds, in the order a reader meets them. */
export const KINDS = [
  { kind: 'Registry', file: 'modelgate.yaml', schema: 'schemas/registry.schema.json', example: 'registry-template/modelgate.yaml' },
  { kind: 'Model', file: 'models/<model>/model.yaml', schema: 'schemas/model.schema.json', example: 'registry-template/models/fraud-detector/model.yaml' },
  {
    kind: 'ModelVersion',
    file: 'models/<model>/versions/<N>.yaml',
    schema: 'schemas/model-version.schema.json',
    example: 'registry-template/models/fraud-detector/versions/1.yaml',
  },
  {
    kind: 'PromotionPolicy',
    file: 'policies/promotion.yaml',
    schema: 'schemas/promotion-policy.schema.json',
    example: 'registry-template/policies/promotion.yaml',
  },
  {
    kind: 'ModelAliases',
    file: 'models/<model>/aliases.yaml',
    schema: 'schemas/model-aliases.schema.json',
    example: 'test/fixtures/manifests/valid/model-aliases/champion-challenger.yaml',
  },
];

/** What each exit code of SPEC §4 means, by its name in src/errors.ts ExitCode. */
const EXIT_MEANINGS = {
  ok: 'success',
  content: 'the registry content or a check is at fault: invalid manifest, policy not met, approvals pending, integrity mismatch, unknown model or version',
  usage: 'the command line is at fault',
  service: 'an outside service failed (S3, git remote, GitHub)',
};

/** How a map's keys are called in field paths, by the map's own name. */
const KEY_NAMES = {
  environments: 'environment',
  models: 'model',
  metrics: 'metric',
  champion: 'metric',
  parameters: 'parameter',
  annotations: 'key',
  requests: 'resource',
  limits: 'resource',
};

/**
 * The rows of a schema's field table: one per property at any depth (`artifact.files[].sha256`),
 * one per map entry (`metrics.<metric>`). A `$ref` to a structure already listed is not expanded
 * again; its row says which path has the same shape. Throws when a property has no description,
 * so an undocumented field cannot reach the reference.
 */
export function schemaRows(schema, source = 'schema') {
  const rows = [];
  const expanded = new Map();

  const resolve = (node) => {
    if (!node || typeof node !== 'object' || node.$ref === undefined) return { node, ref: undefined, target: undefined };
    if (!node.$ref.startsWith('#/')) throw new Error(`${source}: only local $ref are supported, found ${node.$ref}`);
    let target = schema;
    for (const part of node.$ref.slice(2).split('/')) {
      target = target?.[part.replaceAll('~1', '/').replaceAll('~0', '~')];
    }
    if (!target || typeof target !== 'object') throw new Error(`${source}: $ref ${node.$ref} points at nothing`);
    const { $ref: _ref, ...own } = node;
    const inner = resolve(target);
    return { node: { ...inner.node, ...own }, ref: node.$ref, target: inner.node };
  };

  const hasFields = (node) => Boolean(node.properties) || isSchema(node.additionalProperties) || (isSchema(node.items) && hasFields(resolve(node.items).node));

  const visit = (raw, path, required) => {
    const { node, ref, target } = resolve(raw);
    const description = raw.description ?? target?.description;
    if (typeof description !== 'string' || !description.trim()) throw new Error(`${source}: ${path} has no description`);
    const row = { path, type: typeOf(node, (n) => resolve(n).node), required, description };
    rows.push(row);
    if (!hasFields(node)) return;
    if (ref !== undefined) {
      const first = expanded.get(ref);
      if (first !== undefined) {
        row.sameAs = first;
        return;
      }
      expanded.set(ref, path);
    }
    children(node, path);
  };

  const children = (node, path) => {
    for (const [key, child] of Object.entries(node.properties ?? {})) {
      visit(child, path ? `${path}.${key}` : key, (node.required ?? []).includes(key));
    }
    if (isSchema(node.additionalProperties)) {
      const name = KEY_NAMES[path.split('.').pop()?.replace(/\[\]$/, '') ?? ''] ?? 'name';
      visit(node.additionalProperties, `${path}.<${name}>`, false);
    }
    if (isSchema(node.items)) {
      const item = resolve(node.items).node;
      if (hasFields(item)) children(item, `${path}[]`);
    }
  };

  children(schema, '');
  return rows;
}

const isSchema = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

const code = (text) => `\`${text}\``;
const count = (n, unit) => `${n} ${unit}${n === 1 ? '' : 's'}`;
const range = (min, max, unit) =>
  min !== undefined && max !== undefined
    ? `${min}–${max}${unit ? ` ${unit}s` : ''}`
    : min !== undefined
      ? `≥ ${unit ? count(min, unit) : min}`
      : max !== undefined
        ? `≤ ${unit ? count(max, unit) : max}`
        : undefined;

/**
 * Type and constraints of a schema node, in words: `string (uri), ≤ 2048 chars`. `resolve`
 * follows a `$ref` to its target (schemaRows passes one for the schema at hand).
 */
export function typeOf(node, resolve = (n) => n) {
  if (node.const !== undefined) return `${code(node.const)} (constant)`;
  if (node.enum) return `one of ${node.enum.map(code).join(', ')}`;
  const types = [node.type ?? 'any'].flat();
  const parts = [];
  if (types.includes('array')) {
    const item = isSchema(node.items) ? resolve(node.items) : {};
    const list = [range(node.minItems, node.maxItems, 'item'), node.uniqueItems ? 'no duplicates' : undefined].filter(Boolean);
    const of = item.properties ? 'objects' : typeOf(item, resolve);
    return `list of ${of}${list.length ? `; ${list.join(', ')}` : ''}`;
  }
  if (types.includes('object') && !node.properties && isSchema(node.additionalProperties)) {
    parts.push('map');
    const keys = node.propertyNames ? resolve(node.propertyNames) : undefined;
    if (keys?.pattern) parts.push(`keys matching ${code(keys.pattern)}`);
  } else {
    parts.push(types.map((t) => (t === 'string' && node.format ? `string (${node.format})` : t)).join(' or '));
  }
  const entries = range(node.minProperties, node.maxProperties, 'entry');
  if (entries) parts.push(entries.replace(/entrys/g, 'entries'));
  const chars = range(node.minLength, node.maxLength, 'char');
  if (chars) parts.push(chars);
  const value = range(node.minimum, node.maximum);
  if (value) parts.push(value);
  if (node.pattern) parts.push(`matching ${code(node.pattern)}`);
  return parts.join(', ');
}

/** Escapes text for a Markdown table cell; inside code spans only the pipe needs it (GFM). */
function cell(text) {
  return String(text)
    .replace(/\n/g, ' ')
    .split('`')
    .map((part, i) => (i % 2 ? part.replace(/\|/g, '\\|') : part.replace(/[|*_<>]/g, (c) => ({ '<': '&lt;', '>': '&gt;' })[c] ?? `\\${c}`)))
    .join('`');
}

function fieldTable(rows) {
  const lines = ['| field | type | required | description |', '|---|---|---|---|'];
  for (const r of rows) {
    const description = r.sameAs ? `${r.description} Same shape as ${code(r.sameAs)}.` : r.description;
    lines.push(`| ${cell(code(r.path))} | ${cell(r.type)} | ${r.required ? 'yes' : ''} | ${cell(description)} |`);
  }
  return lines.join('\n');
}

const anchor = (heading) =>
  heading
    .toLowerCase()
    .replace(/[^\w\- ]/g, '')
    .replace(/ /g, '-');

function kindSection({ kind, file, schema: schemaFile, example }, read) {
  const schema = JSON.parse(read(schemaFile));
  const exampleText = read(example);
  return [
    `## ${kind}: \`${file}\``,
    '',
    `${cell(schema.description)} Schema: [\`${schemaFile}\`](../${schemaFile}).`,
    '',
    fieldTable(schemaRows(schema, schemaFile)),
    '',
    `### Example: \`${example}\``,
    '',
    example.startsWith('registry-template/')
      ? `The file shipped in [\`${example}\`](../${example}) (what \`modelgate init\` starts from):`
      : `A valid example, from [\`${example}\`](../${example}) (\`modelgate alias set\` writes and edits this file):`,
    '',
    '```yaml',
    exampleText.trimEnd(),
    '```',
  ].join('\n');
}

/**
 * The CLI (and the error code list), loaded from its TypeScript source. Why this way: `dist/cli.js --help` would need a
 * build first and silently describe a stale bundle; a regex over src/cli/main.ts breaks on the
 * next reformat. esbuild (already the project's bundler) compiles src/cli/main.ts and
 * src/errors.ts in memory, with the lazily loaded commands left out (only `--help` runs, which
 * never loads them), and we call the real runCli: the reference shows exactly what
 * `modelgate --help` and `modelgate <command> --help` print.
 */
async function loadCli() {
  const result = await build({
    stdin: {
      contents: "export { runCli } from './src/cli/main.ts'; export { ExitCode } from './src/errors.ts'; export { ERROR_CODES } from './src/error-codes.ts';",
      resolveDir: ROOT,
      sourcefile: 'reference-entry.ts',
      loader: 'ts',
    },
    bundle: true,
    write: false,
    format: 'iife',
    globalName: '__modelgateCli',
    platform: 'node',
    target: 'node24',
    logLevel: 'silent',
    plugins: [
      {
        name: 'commands-stay-out',
        setup(b) {
          b.onResolve({ filter: /\/commands\// }, (args) => ({ path: args.path, external: true }));
        },
      },
    ],
  });
  // An IIFE evaluated as a function body: no module loader involved (works the same under vitest).
  return new Function(`${result.outputFiles[0].text}\nreturn __modelgateCli;`)();
}

async function help(runCli, args) {
  let out = '';
  const code = await runCli(args, { cwd: ROOT, env: {}, stdout: (t) => (out += t), stderr: () => {}, tty: false });
  if (code !== 0) throw new Error(`modelgate ${args.join(' ')} exited ${code}`);
  return out;
}

/** Lines `  <term>  <text>` of one section of the global help (`commands:`, `global flags:`). */
function helpSection(text, title) {
  const lines = text.split('\n');
  const start = lines.indexOf(`${title}:`);
  if (start < 0) throw new Error(`modelgate --help has no "${title}:" section`);
  const entries = [];
  for (const line of lines.slice(start + 1)) {
    if (!line.trim()) break;
    const m = /^\s+(\S.*?)\s{2,}(\S.*)$/.exec(line) ?? /^\s+(\S+)\s+(\S.*)$/.exec(line);
    if (!m) throw new Error(`cannot read ${JSON.stringify(line)} in the "${title}:" section of modelgate --help`);
    entries.push({ term: m[1], text: m[2] });
  }
  if (!entries.length) throw new Error(`the "${title}:" section of modelgate --help is empty`);
  return entries;
}

async function commandSection(cli) {
  const { runCli, ExitCode } = cli;
  const global = await help(runCli, ['--help']);
  const commands = [];
  for (const { term: name } of helpSection(global, 'commands')) {
    const text = await help(runCli, [name, '--help']);
    const m = /^usage: modelgate (.+)\n\n(.+)\n/.exec(text);
    if (!m) throw new Error(`cannot read the output of modelgate ${name} --help`);
    const flags = text.includes('\nflags:\n') ? helpSection(text, 'flags') : [];
    commands.push({ name, usage: m[1], summary: m[2], flags });
  }
  const flags = helpSection(global, 'global flags');
  const exits = Object.entries(ExitCode).map(([name, n]) => {
    if (!EXIT_MEANINGS[name]) throw new Error(`ExitCode.${name} has no meaning in scripts/gen-reference.mjs`);
    return { n, meaning: EXIT_MEANINGS[name] };
  });
  return [
    '## Command reference',
    '',
    'Usage: `modelgate <command> [flags]`. Version references (`<ref>`): `fraud@3` (a version), `fraud@latest` (the newest version), `fraud@production` (the newest version in a stage, case-insensitive); a bare model name `fraud` is refused where a version is meant (exit 2, `E_BARE_MODEL_REF`). `modelgate <command> --help` (or `modelgate help <command>`) prints the usage and every flag of one command; `modelgate --version` prints the version.',
    '',
    '### Commands',
    '',
    '| command | usage | what it does |',
    '|---|---|---|',
    ...commands.map((c) => `| ${cell(code(c.name))} | ${cell(code(`modelgate ${c.usage}`))} | ${cell(c.summary)} |`),
    '',
    ...commands.flatMap((c) =>
      c.flags.length
        ? [
            `#### \`modelgate ${c.name}\``,
            '',
            `${cell(c.summary)}. Usage: ${cell(code(`modelgate ${c.usage}`))}`,
            '',
            '| flag | meaning |',
            '|---|---|',
            ...c.flags.map((f) => `| ${cell(code(f.term))} | ${cell(f.text)} |`),
            '',
          ]
        : [],
    ),
    '### Global flags',
    '',
    'Given before or after the command.',
    '',
    '| flag | meaning |',
    '|---|---|',
    ...flags.map((f) => `| ${cell(f.term.split(', ').map(code).join(', '))} | ${cell(f.text)} |`),
    '',
    '### Exit codes',
    '',
    'Every error names what is wrong and where; no stack trace unless `--debug`.',
    '',
    '| code | meaning |',
    '|---|---|',
    ...exits.map((e) => `| ${e.n} | ${cell(e.meaning)} |`),
  ].join('\n');
}

/**
 * The catalog of src/error-codes.ts: one table per area, in the order the list declares them.
 * Every code's entry says the exit codes it is raised with and what went wrong.
 */
function errorCodeSection({ ERROR_CODES }) {
  const areas = new Map();
  for (const [name, info] of Object.entries(ERROR_CODES)) {
    if (!areas.has(info.area)) areas.set(info.area, []);
    areas.get(info.area).push({ name, ...info });
  }
  return [
    '## Error codes',
    '',
    'Every error and every validation problem carries a stable code (`--json` prints it as `code`; tests assert it). Declared once, in `src/error-codes.ts`; this catalog is generated from it.',
    '',
    ...[...areas].flatMap(([area, codes]) => [
      `### ${area[0].toUpperCase()}${area.slice(1)}`,
      '',
      '| code | exit | meaning |',
      '|---|---|---|',
      ...codes.map((c) => `| ${code(c.name)} | ${c.exit.join(', ')} | ${cell(c.summary)} |`),
      '',
    ]),
  ].join('\n');
}

/** The full text of docs/reference.md, from this checkout's schemas, template and CLI source. */
export async function renderReference() {
  const read = (path) => readFileSync(join(ROOT, path), 'utf8');
  const headings = [...KINDS.map((k) => `${k.kind}: ${k.file}`), 'Command reference', 'Error codes'];
  const cli = await loadCli();
  return [
    '<!-- Generated by `npm run docs` (scripts/gen-reference.mjs) from schemas/, registry-template/ and the CLI. Do not edit by hand. -->',
    '',
    '# modelgate reference',
    '',
    'The documents of a registry repository and the `modelgate` command line. Field paths read like `artifact.files[].sha256`: `[]` is each item of a list, `<metric>` a key you choose. *Required* means required whenever the enclosing object is present. Every document starts with `apiVersion: modelgate.dev/v1` and its `kind`; unknown fields are errors.',
    '',
    ...headings.map((h) => `- [${h.replace(/^(\w+): (.*)$/, '$1: `$2`')}](#${anchor(h)})`),
    '',
    ...KINDS.flatMap((k) => [kindSection(k, read), '']),
    await commandSection(cli),
    '',
    errorCodeSection(cli),
  ].join('\n');
}

// Run directly (not imported by the test): write or check the file.
if (process.argv[1] && resolvePath(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const text = await renderReference();
  const target = join(ROOT, REFERENCE_FILE);
  if (process.argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(target, 'utf8');
    } catch {}
    if (current !== text) {
      process.stderr.write(`${REFERENCE_FILE} is out of date: run npm run docs\n`);
      process.exit(1);
    }
  } else {
    writeFileSync(target, text);
    process.stdout.write(`wrote ${REFERENCE_FILE}\n`);
  }
}
