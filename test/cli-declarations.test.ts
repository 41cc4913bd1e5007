import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMAND_SPECS, usageOf, type CommandName } from '../src/cli/commands.js';
import { runCli, VERSION } from '../src/cli/main.js';
import pkg from '../package.json' with { type: 'json' };

async function cli(args: string[], cwd: string) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { cwd, env: {}, stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), tty: false });
  return { code, stdout, stderr };
}

const NAMES = Object.keys(COMMAND_SPECS) as CommandName[];
// An empty folder (no registry, no git): each command stops at its first check after parsing.
const EMPTY = mkdtempSync(join(tmpdir(), 'mg-cli-'));

describe('one declaration per command', () => {
  it('the global help lists every declared command', async () => {
    const { code, stdout } = await cli(['--help'], EMPTY);
    expect(code).toBe(0);
    for (const name of NAMES) expect(stdout).toMatch(new RegExp(`^  ${name} +${COMMAND_SPECS[name].summary}`, 'm'));
  });

  for (const name of NAMES) {
    const flags = Object.entries(COMMAND_SPECS[name].flags) as Array<[string, { type: string; short?: string; description: string }]>;

    it(`${name} --help lists every flag its parser accepts, with its description`, async () => {
      const { code, stdout } = await cli([name, '--help'], EMPTY);
      expect(code).toBe(0);
      expect(stdout.startsWith(`usage: modelgate ${usageOf(name)}\n`)).toBe(true);
      for (const [flag, spec] of flags) {
        const line = stdout.split('\n').find((l) => new RegExp(`^ +(-\\w, )?--${flag}( <[^ ]+>)? {2}`).test(l));
        expect(line, `${name} --help shows --${flag}`).toBeDefined();
        expect(line).toContain(spec.description);
      }
      // `help <command>` prints the same.
      expect((await cli(['help', name], EMPTY)).stdout).toBe(stdout);
    });

    it(`${name}: the parser accepts every flag --help shows, and refuses one it does not`, async () => {
      for (const [flag, spec] of flags) {
        const args = spec.type === 'string' ? [`--${flag}`, 'x'] : [`--${flag}`];
        const r = await cli([name, ...args], EMPTY);
        expect(r.stderr, `${name} --${flag}`).not.toMatch(/Unknown option|argument missing|does not take an argument/);
        if (spec.short) expect((await cli([name, `-${spec.short}`, 'x'], EMPTY)).stderr).not.toMatch(/Unknown option/);
      }
      const bad = await cli([name, '--no-such-flag'], EMPTY);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain("Unknown option '--no-such-flag'");
      expect(bad.stderr).toContain(`usage: modelgate ${usageOf(name)}`);
    });
  }

  it('--version prints the package version', async () => {
    const r = await cli(['--version'], EMPTY);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${pkg.version}\n`);
    expect(VERSION).toBe(pkg.version);
  });

  it('help of an unknown command is a usage error', async () => {
    const r = await cli(['help', 'frobnicate'], EMPTY);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "frobnicate"');
  });
});
