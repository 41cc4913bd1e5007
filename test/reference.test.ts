import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { KINDS, REFERENCE_FILE, renderReference, schemaRows } from '../scripts/gen-reference.mjs';
import { ERROR_CODES } from '../src/error-codes.js';
import { loadManifest } from '../src/manifest/load.js';

const ROOT = join(import.meta.dirname, '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

let rendered: string;
beforeAll(async () => {
  rendered = await renderReference();
});

/** The body of `## <Kind>: …` up to the next `## ` heading. */
function section(text: string, kind: string): string {
  const start = text.indexOf(`\n## ${kind}: `);
  expect(start, `section for ${kind}`).toBeGreaterThanOrEqual(0);
  const end = text.indexOf('\n## ', start + 1);
  return text.slice(start, end < 0 ? undefined : end);
}

/** Rows of the field table in a section: path (code span unescaped) and description cell. */
function tableRows(body: string): Array<{ path: string; description: string }> {
  return body
    .split('\n')
    .filter((l) => /^\| `/.test(l))
    .map((l) => {
      const cells = l.split(/(?<!\\)\|/).map((c) => c.trim());
      return { path: cells[1]!.replace(/^`|`$/g, ''), description: cells[4] ?? '' };
    });
}

/** Every entry of every `properties` map in a schema (including $defs), with its JSON path. */
function schemaProperties(node: unknown, at = ''): Array<{ at: string; name: string; node: Record<string, unknown> }> {
  if (!node || typeof node !== 'object') return [];
  const out: Array<{ at: string; name: string; node: Record<string, unknown> }> = [];
  for (const [key, value] of Object.entries(node)) {
    if (key === 'properties' && value && typeof value === 'object' && !Array.isArray(value)) {
      for (const [name, child] of Object.entries(value)) {
        out.push({ at: `${at}/properties/${name}`, name, node: child as Record<string, unknown> });
        out.push(...schemaProperties(child, `${at}/properties/${name}`));
      }
    } else out.push(...schemaProperties(value, `${at}/${key}`));
  }
  return out;
}

describe('docs/reference.md', () => {
  it('is what scripts/gen-reference.mjs renders now (run `npm run docs` after changing schemas/ or the CLI)', () => {
    expect(read(REFERENCE_FILE)).toBe(rendered);
  });

  it('documents every property of every schema, each with a description', () => {
    for (const k of KINDS) {
      const schema = JSON.parse(read(k.schema));
      const props = schemaProperties(schema);
      expect(props.length).toBeGreaterThan(3);
      for (const p of props) {
        expect(typeof p.node.description === 'string' && p.node.description.trim().length > 0, `${k.schema}#${p.at} has a description`).toBe(true);
      }
      const rows = tableRows(section(rendered, k.kind));
      const documented = new Set(rows.map((r) => r.path.split('.').pop()!.replace(/\[\]$/, '')));
      for (const p of props) expect(documented.has(p.name), `${k.schema}#${p.at} appears in the ${k.kind} table`).toBe(true);
      for (const r of rows) expect(r.description.length, `${k.kind} ${r.path} has a description`).toBeGreaterThan(10);
    }
  });

  it('lists nested fields by path, with types and required marks', () => {
    const version = section(rendered, 'ModelVersion');
    expect(version).toMatch(/^\| `artifact\.files\[\]\.sha256` \| string, matching `\^\[0-9a-f\]\{64\}\$` \| yes \| sha256 of this file\. \|$/m);
    expect(version).toMatch(
      /^\| `stage` \| one of `None`, `Staging`, `Production`, `Archived` \| yes \| Lifecycle stage\. The only field a promotion changes/m,
    );
    expect(version).toMatch(/^\| `metrics\.<metric>` \| number \|/m);
    const policy = section(rendered, 'PromotionPolicy');
    expect(policy).toMatch(/^\| `rules\[\]\.approvals\[\]\.teams` \| list of string, .*no duplicates \| {2}\| Team slugs/m);
    expect(policy).toMatch(/^\| `rules\[\]\.previously` \|.*\| Only versions that were in this stage before, proven from the registry's git history/m);
    // A structure used twice is listed once, and the second use points at the first.
    expect(policy).toMatch(/^\| `models\.<model>\.rules` \|.*Same shape as `rules`\. \|$/m);
    expect(policy).not.toContain('models.<model>.rules[].name');
    // Pipes inside patterns are escaped, so the table keeps its four columns.
    const registry = section(rendered, 'Registry');
    const uriRow = registry.split('\n').find((l) => l.startsWith('| `storage.uri`'))!;
    expect(uriRow.split(/(?<!\\)\|/).length).toBe(6);
  });

  it('shows each shipped template file verbatim as the example, and the example is a valid document', () => {
    for (const k of KINDS) {
      const text = read(k.example);
      const body = section(rendered, k.kind);
      expect(body).toContain('```yaml\n' + text.trimEnd() + '\n```');
      const loaded = loadManifest(text, k.example.replace(/^registry-template\//, ''), k.kind);
      expect(loaded.problems, k.example).toEqual([]);
    }
  });

  it('has a command reference covering every command file, the global flags and the exit codes', () => {
    const commands = rendered.slice(rendered.indexOf('\n## Command reference'));
    const names = readdirSync(join(ROOT, 'src/commands'))
      .filter((f) => f.endsWith('.ts'))
      .map((f) => f.replace(/\.ts$/, ''));
    expect(names.length).toBeGreaterThan(10);
    for (const name of names) expect(commands).toMatch(new RegExp(`^\\| \`${name}\` \\| \`modelgate ${name}\\b`, 'm'));
    expect(commands).toContain('| `modelgate promote <model>@<version\\|latest> [flags]` |');
    // Every flag of every command, as its declaration (src/cli/commands.ts) gives it.
    expect(commands).toContain('| `--to <Stage>` | target stage: None, Staging, Production or Archived |');
    expect(commands).toContain('| `-o, --output <path>` |');
    expect(commands).toContain('| `--dataset <id=…,uri=…[,path=file]>` |');
    for (const flag of ['--registry <dir-or-url>', '--json', '--quiet', '--debug']) expect(commands).toContain(`| \`${flag}\` |`);
    for (const code of [0, 1, 2, 3]) expect(commands).toMatch(new RegExp(`^\\| ${code} \\| \\S`, 'm'));
  });
});

describe('the error code catalog in docs/reference.md', () => {
  it('has one row per code of src/error-codes.ts, with its exit codes and summary', () => {
    const catalog = rendered.slice(rendered.indexOf('\n## Error codes'));
    const rows = catalog.split('\n').filter((l) => l.startsWith('| `E_'));
    expect(rows.length).toBe(Object.keys(ERROR_CODES).length);
    for (const [name, info] of Object.entries(ERROR_CODES)) {
      const row = rows.find((r) => r.startsWith(`| \`${name}\` |`));
      expect(row, name).toBeDefined();
      expect(row!.split(/(?<!\\)\|/)[2]!.trim(), name).toBe(info.exit.join(', '));
    }
    expect(catalog).toContain('### Manifest\n');
    expect(catalog).toContain('| `E_YAML_ALIAS` | 1 | A YAML anchor or alias; manifests write values out. |');
  });
});

describe('schemaRows', () => {
  it('refuses a property without a description, naming its path', () => {
    const schema = {
      type: 'object',
      properties: {
        outer: { description: 'documented', type: 'object', properties: { inner: { type: 'string' } } },
      },
    };
    expect(() => schemaRows(schema, 'x.schema.json')).toThrow('x.schema.json: outer.inner has no description');
  });

  it('refuses a $ref that points at nothing or outside the schema', () => {
    const dangling = { type: 'object', properties: { a: { description: 'd', $ref: '#/$defs/missing' } } };
    expect(() => schemaRows(dangling, 'y')).toThrow('$ref #/$defs/missing points at nothing');
    const remote = { type: 'object', properties: { a: { description: 'd', $ref: 'other.json#/x' } } };
    expect(() => schemaRows(remote, 'y')).toThrow('only local $ref');
  });

  it('takes the description of a $ref target when the property has none of its own', () => {
    const schema = {
      type: 'object',
      required: ['digest'],
      properties: { digest: { $ref: '#/$defs/sha256' } },
      $defs: { sha256: { description: 'a digest', type: 'string', pattern: '^[0-9a-f]{64}$' } },
    };
    expect(schemaRows(schema)).toEqual([{ path: 'digest', type: 'string, matching `^[0-9a-f]{64}$`', required: true, description: 'a digest' }]);
  });
});
