import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/main.js';

const TEMPLATE = join(import.meta.dirname, '../registry-template');
const ALIASES = 'models/fraud-detector/aliases.yaml';
const temps: string[] = [];
afterAll(() => Promise.all(temps.map((d) => rm(d, { recursive: true, force: true }))));

async function registry(edit?: (root: string) => Promise<void>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'mg-aliases-'));
  temps.push(root);
  await cp(TEMPLATE, root, { recursive: true });
  await edit?.(root);
  return root;
}

const aliasesText = (aliases: Record<string, number>) =>
  `apiVersion: modelgate.dev/v1\nkind: ModelAliases\nmodel: fraud-detector\naliases:\n${Object.entries(aliases)
    .map(([k, v]) => `  ${k}: ${v}\n`)
    .join('')}`;

async function cli(cwd: string, ...args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { cwd, env: {}, tty: false, stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
  return { code, stdout, stderr };
}

describe('aliases.yaml in validate', () => {
  it('accepts aliases that point at existing, unarchived versions', async () => {
    const root = await registry((r) => writeFile(join(r, ALIASES), aliasesText({ champion: 1, challenger: 2 })));
    const r = await cli(root, 'validate', '--json');
    expect(JSON.parse(r.stdout)).toMatchObject({ valid: true, problems: [] });
    expect(r.code).toBe(0);
  });

  it('refuses an alias at a missing version, an Archived one and a reserved name, each where it is written', async () => {
    const root = await registry(async (r) => {
      await writeFile(join(r, ALIASES), aliasesText({ champion: 1, challenger: 9, staging: 2 }));
      const v1 = join(r, 'models/fraud-detector/versions/1.yaml');
      await writeFile(v1, (await readFile(v1, 'utf8')).replace('stage: Production', 'stage: Archived'));
    });
    const r = await cli(root, 'validate', '--json');
    expect(r.code).toBe(1);
    const problems = JSON.parse(r.stdout).problems as Array<{ file: string; code: string; line: number }>;
    expect(problems.map((p) => [p.file, p.code, p.line])).toEqual([[ALIASES, 'E_ALIAS_NAME', 7]]);
    // The reserved name stops the file loading; with it gone the targets are judged.
    await writeFile(join(root, ALIASES), aliasesText({ champion: 1, challenger: 9 }));
    const again = JSON.parse((await cli(root, 'validate', '--json')).stdout).problems as Array<{ file: string; code: string; line: number }>;
    expect(again.map((p) => [p.file, p.code, p.line])).toEqual([
      [ALIASES, 'E_ALIAS_TARGET', 5],
      [ALIASES, 'E_ALIAS_TARGET', 6],
    ]);
  });

  it('reports an archived alias target when only the version file is validated (the gate validates the changed files)', async () => {
    const root = await registry(async (r) => {
      await writeFile(join(r, ALIASES), aliasesText({ challenger: 2 }));
      const v2 = join(r, 'models/fraud-detector/versions/2.yaml');
      await writeFile(v2, (await readFile(v2, 'utf8')).replace('stage: Staging', 'stage: Archived'));
    });
    const r = await cli(root, 'validate', '--json', 'models/fraud-detector/versions/2.yaml');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).problems.map((p: { code: string }) => p.code)).toEqual(['E_ALIAS_TARGET']);
  });
});
