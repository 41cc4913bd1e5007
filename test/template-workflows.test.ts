// The shipped workflows' safety properties, read from registry-template/.github/workflows and
// asserted on the parsed YAML (plus the raw lines, for pin comments). The sanitizing step that
// turns the untrusted review run's artifact into the pull-request input is executed with bash.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const DIR = join(import.meta.dirname, '../registry-template/.github/workflows');

interface Step {
  id?: string;
  if?: string;
  uses?: string;
  run?: string;
  shell?: string;
  'working-directory'?: string;
  env?: Record<string, string>;
  with?: Record<string, unknown>;
}
interface Job {
  if?: string;
  environment?: string | { name: string };
  permissions?: Record<string, string> | string;
  steps: Step[];
}
interface Workflow {
  name: string;
  on: Record<string, unknown>;
  permissions?: Record<string, string> | string;
  jobs: Record<string, Job>;
}

const files = readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f));
const raw = Object.fromEntries(files.map((f) => [f, readFileSync(join(DIR, f), 'utf8')]));
const workflows = Object.fromEntries(files.map((f) => [f, parse(raw[f]!) as Workflow]));
const gate = workflows['modelgate.yml']!;
const review = workflows['modelgate-review.yml']!;
const allJobs = Object.entries(workflows).flatMap(([file, w]) => Object.entries(w.jobs).map(([name, job]) => ({ file, name, job })));
const environmentOf = (job: Job) => (typeof job.environment === 'string' ? job.environment : job.environment?.name);
/** Jobs that run the gate: the modelgate action with command check. */
const gateJobs = allJobs.filter(({ job }) => job.steps.some((s) => s.uses?.startsWith('modelgate-dev/modelgate@') && (s.with?.command ?? 'check') === 'check'));

describe('registry-template workflows', () => {
  it('ships the gate, the review recorder and the pages', () => {
    expect(files.sort()).toEqual(['modelgate-pages.yml', 'modelgate-review.yml', 'modelgate.yml']);
    expect(gateJobs.map((j) => `${j.file}:${j.name}`)).toEqual(['modelgate.yml:gate']);
  });

  it('the pull_request_review workflow has no permissions, no secrets, no environment and checks nothing out', () => {
    expect(Object.keys(review.on)).toEqual(['pull_request_review']);
    expect(review.permissions).toEqual({});
    for (const job of Object.values(review.jobs)) {
      expect(job.permissions ?? {}).toEqual({});
      expect(job.environment).toBeUndefined();
      expect(job.steps.filter((s) => s.uses?.startsWith('actions/checkout@'))).toEqual([]);
    }
    expect(raw['modelgate-review.yml']).not.toMatch(/secrets\./);
    expect(raw['modelgate-review.yml']).not.toMatch(/github\.token|GITHUB_TOKEN/);
  });

  it('the gate never runs on events that take the workflow file from the pull request', () => {
    for (const w of Object.values(workflows).filter((w) => w !== review)) {
      expect(Object.keys(w.on)).not.toContain('pull_request');
      expect(Object.keys(w.on)).not.toContain('pull_request_review');
      expect(Object.keys(w.on)).not.toContain('pull_request_review_comment');
      expect(Object.keys(w.on)).not.toContain('issue_comment');
    }
    expect(gate.on.workflow_run).toEqual({ workflows: [review.name], types: ['completed'] });
    expect(gate.permissions).toEqual({});
    expect(gate.jobs.gate!.if).toMatch(/github\.event\.workflow_run\.event == 'pull_request_review'/);
    expect(gate.jobs.gate!.if).toMatch(/github\.event\.workflow_run\.conclusion == 'success'/);
  });

  it('no run: line expands an expression other than a sanitized step output', () => {
    let runs = 0;
    for (const { file, name, job } of allJobs) {
      for (const step of job.steps.filter((s) => s.run !== undefined)) {
        runs++;
        const expressions = [...step.run!.matchAll(/\$\{\{([\s\S]*?)\}\}/g)].map((m) => m[1]!.trim());
        expect(
          expressions.filter((e) => !/^steps\.[\w-]+\.outputs\.[\w-]+$/.test(e)),
          `${file}:${name}`,
        ).toEqual([]);
        expect(step.run, `${file}:${name}`).not.toMatch(/github\.event\./);
      }
    }
    expect(runs).toBeGreaterThanOrEqual(2);
  });

  it('the gate job holds the App key through the `modelgate` environment, and only gate jobs use secrets', () => {
    for (const { job } of gateJobs) expect(environmentOf(job)).toBe('modelgate');
    for (const { file, name, job } of allJobs) {
      if (/secrets\./.test(JSON.stringify(job))) expect(environmentOf(job), `${file}:${name} uses a secret outside the environment`).toBe('modelgate');
    }
    const app = gate.jobs.gate!.steps.find((s) => s.uses?.startsWith('actions/create-github-app-token@'))!;
    expect(app.with?.['private-key']).toBe('${{ secrets.MODELGATE_APP_PRIVATE_KEY }}');
    // The decision-record key (SPEC v2 §8) reaches only the check step, from the same environment.
    const steps = allJobs.flatMap(({ job }) => job.steps ?? []);
    const signing = steps.filter((s) => JSON.stringify(s).includes('MODELGATE_SIGNING_KEY'));
    expect(signing).toHaveLength(1);
    expect(signing[0]!.with?.command).toBe('check');
    expect(signing[0]!.env?.MODELGATE_SIGNING_KEY).toBe('${{ secrets.MODELGATE_SIGNING_KEY }}');
    // The workflow token cannot post the status or the comment: only the App's token can.
    const permissions = gate.jobs.gate!.permissions as Record<string, string>;
    expect(permissions.statuses).toBeUndefined();
    expect(permissions['pull-requests']).toBeUndefined();
    expect(Object.entries(permissions).filter(([, v]) => v === 'write')).toEqual([['id-token', 'write']]);
    const check = gate.jobs.gate!.steps.find((s) => s.uses?.startsWith('modelgate-dev/modelgate@'))!;
    expect(check.with?.['github-token']).toBe('${{ steps.app.outputs.token }}');
  });

  it('no job writes to main: the post-merge sync checks the pins and only opens the repair pull request', () => {
    const sync = gate.jobs.sync!;
    const step = sync.steps.find((s) => s.uses?.startsWith('modelgate-dev/modelgate@'))!;
    expect(step.with?.command).toBe('sync');
    // push: true would be the v1 direct push to main; the template never sets it.
    expect([undefined, false, 'false']).toContain(step.with?.push);
    for (const { file, name, job } of allJobs) {
      const text = JSON.stringify(job);
      expect(text, `${file}:${name} pushes to main`).not.toMatch(/git push[^"]*\bmain\b|push:\s*true/);
    }
    expect((sync.permissions as Record<string, string>)['pull-requests']).toBe('write');
    const readme = readFileSync(new URL('../registry-template/README.md', import.meta.url), 'utf8');
    const pushRow = readme.split('\n').find((l) => l.startsWith('| Nobody pushes to `main`'))!;
    expect(pushRow).toMatch(/no bypass/i);
    expect(pushRow).not.toMatch(/sync bot/i);
  });

  it('the pages are built on every push to main and deployed by a job that can publish and nothing else (SPEC v3 §11)', () => {
    const pages = workflows['modelgate-pages.yml']!;
    expect(Object.keys(pages.on).sort()).toEqual(['push', 'workflow_dispatch']);
    expect(pages.on.push).toEqual({ branches: ['main'] });
    expect(pages.permissions).toEqual({});
    const { build, deploy } = pages.jobs;
    expect(build!.permissions).toEqual({ contents: 'read', 'id-token': 'write' });
    expect(build!.steps.find((s) => s.uses?.startsWith('actions/upload-pages-artifact@'))?.with?.path).toBe('_site');
    // The registry and modelgate (built from its source: it is not on npm) are checked out side by side, neither keeping credentials.
    const checkouts = build!.steps.filter((s) => s.uses?.startsWith('actions/checkout@'));
    expect(checkouts.map((s) => [s.with?.repository, s.with?.path, s.with?.['persist-credentials']])).toEqual([
      [undefined, 'registry', false],
      ['modelgate-dev/modelgate', 'modelgate', false],
    ]);
    expect(raw['modelgate-pages.yml']).toMatch(/^\s+ref: v1\s+# pin to a full commit SHA/m);
    expect(raw['modelgate-pages.yml']).not.toMatch(/\bnpx\b/);
    const runs = build!.steps.filter((s) => s.run !== undefined);
    expect(runs.map((s) => [s['working-directory'], s.run!.trim()])).toEqual([
      ['modelgate', 'npm ci && npm run build'],
      [undefined, 'node modelgate/dist/cli.js --registry registry pages _site'],
    ]);
    expect(deploy!.permissions).toEqual({ pages: 'write', 'id-token': 'write' });
    expect(deploy!.steps.map((s) => s.uses?.replace(/@.*/, ''))).toEqual(['actions/deploy-pages']);
    expect(environmentOf(deploy!)).toBe('github-pages');
  });

  it("the pages step runs: modelgate's built CLI writes the site from the registry's checkout (SPEC v3 §11)", async () => {
    // The workspace as the job leaves it before the step: the registry's checkout beside modelgate's, built (here: this repository, built by the test run).
    const ws = await mkdtemp(join(tmpdir(), 'mg-pages-workflow-'));
    try {
      const reg = join(ws, 'registry');
      execFileSync('git', ['init', '-q', '-b', 'main', reg]);
      await mkdir(join(reg, 'models/fraud/versions'), { recursive: true });
      await writeFile(join(reg, 'modelgate.yaml'), `apiVersion: modelgate.dev/v1\nkind: Registry\nstorage:\n  uri: file://${ws}/store\n`);
      await writeFile(join(reg, 'models/fraud/model.yaml'), 'apiVersion: modelgate.dev/v1\nkind: Model\nname: fraud\n');
      await writeFile(
        join(reg, 'models/fraud/versions/1.yaml'),
        `apiVersion: modelgate.dev/v1\nkind: ModelVersion\nmodel: fraud\nversion: 1\nstage: None\ncreatedAt: "2026-11-27T10:00:00Z"\nartifact:\n  uri: file://${ws}/store/fraud/sha256/${'a'.repeat(64)}/m.onnx\n  sha256: "${'a'.repeat(64)}"\n  size: 1\nformat: onnx\n`,
      );
      execFileSync('git', ['add', '-A'], { cwd: reg });
      execFileSync('git', ['-c', 'user.name=maria', '-c', 'user.email=maria@example.com', 'commit', '-qm', 'fraud'], { cwd: reg });
      await symlink(join(import.meta.dirname, '..'), join(ws, 'modelgate'));
      const step = workflows['modelgate-pages.yml']!.jobs.build!.steps.find((s) => s.run?.includes(' pages '))!;
      const r = spawnSync('bash', ['-e', '-c', step.run!], {
        cwd: ws,
        encoding: 'utf8',
        env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}` },
      });
      expect(r.status, r.stderr).toBe(0);
      expect(await readFile(join(ws, '_site/models/fraud/versions/1/index.html'), 'utf8')).toContain(`<code id="digest">${'a'.repeat(64)}</code>`);
      expect(await readFile(join(ws, '_site/index.html'), 'utf8')).toContain('data-model="fraud"');
    } finally {
      await rm(ws, { recursive: true, force: true });
    }
  });

  it('every third-party action is pinned to a commit SHA or carries a pin comment', () => {
    let uses = 0;
    for (const [file, text] of Object.entries(raw)) {
      for (const line of text.split('\n')) {
        const m = /^\s*(?:-\s+)?uses:\s*(\S+)(.*)$/.exec(line);
        if (!m) continue;
        uses++;
        const [ref, rest] = [m[1]!, m[2]!];
        if (ref.startsWith('./') || ref.startsWith('docker://')) continue;
        expect(/@[0-9a-f]{40}$/.test(ref) || /#\s*pin\b/.test(rest), `${file}: ${line.trim()}`).toBe(true);
      }
    }
    const parsedUses = allJobs.flatMap(({ job }) => job.steps.filter((s) => s.uses)).length;
    expect(uses).toBe(parsedUses);
  });

  it('the gate checks out the default branch without persisting credentials, never the head', () => {
    for (const { file, name, job } of gateJobs) {
      const checkouts = job.steps.filter((s) => s.uses?.startsWith('actions/checkout@'));
      expect(checkouts, `${file}:${name}`).toHaveLength(1);
      expect(checkouts[0]!.with?.['persist-credentials']).toBe(false);
      expect(checkouts[0]!.with?.ref).toBe('${{ github.event.repository.default_branch }}');
    }
    expect(raw['modelgate.yml']).not.toMatch(/pull_request\.head|head_ref|workflow_run\.head_(sha|branch)/);
  });

  it('runs the gate on merge_group too, so a required modelgate check works with a merge queue', () => {
    expect(gate.on.merge_group).toEqual({ types: ['checks_requested'], branches: ['main'] });
    expect(gate.jobs.gate!.if).toMatch(/github\.event_name == 'merge_group'/);
  });

  it("on workflow_run the number comes from the review run's artifact through the sanitizing step", () => {
    const steps = gate.jobs.gate!.steps;
    const download = steps.find((s) => s.uses?.startsWith('actions/download-artifact@'))!;
    expect(download.if).toBe("github.event_name == 'workflow_run'");
    expect(download.with).toMatchObject({ name: 'modelgate-review', 'run-id': '${{ github.event.workflow_run.id }}' });
    const upload = review.jobs.record!.steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'))!;
    expect(upload.with?.name).toBe('modelgate-review');
    const pr = steps.find((s) => s.id === 'pr')!;
    expect(steps.indexOf(pr)).toBeGreaterThan(steps.indexOf(download));
    expect(pr.env).toEqual({ LISTED: '${{ github.event.workflow_run.pull_requests[0].number }}' });
    const check = steps.find((s) => s.uses?.startsWith('modelgate-dev/modelgate@'))!;
    expect(check.with?.['pull-request']).toBe('${{ steps.pr.outputs.number }}');
  });
});

describe('the sanitizing step, run with bash', () => {
  const script = gate.jobs.gate!.steps.find((s) => s.id === 'pr')!.run!;
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'modelgate-sanitize-'));
  });
  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  /** Runs the step as the runner would (`bash -e`), with `content` as the downloaded artifact. */
  async function sanitize(content: string | Buffer | null, listed = '', opts: { symlinkTo?: string } = {}) {
    const runnerTemp = await mkdtemp(join(tmp, 'run-'));
    const artifact = join(runnerTemp, 'modelgate-review');
    await mkdir(artifact, { recursive: true });
    if (opts.symlinkTo) await symlink(opts.symlinkTo, join(artifact, 'pr-number'));
    else if (content !== null) await writeFile(join(artifact, 'pr-number'), content);
    const output = join(runnerTemp, 'output');
    await writeFile(output, '');
    await writeFile(join(runnerTemp, 'step.sh'), script);
    const r = spawnSync('bash', ['-e', join(runnerTemp, 'step.sh')], {
      cwd: runnerTemp,
      encoding: 'utf8',
      env: { PATH: process.env.PATH, RUNNER_TEMP: runnerTemp, GITHUB_OUTPUT: output, LISTED: listed },
    });
    return { code: r.status, stdout: r.stdout + r.stderr, output: await readFile(output, 'utf8') };
  }

  it('passes a recorded number, agreeing with the listed one when GitHub lists it', async () => {
    expect(await sanitize('12\n')).toMatchObject({ code: 0, output: 'number=12\n' });
    expect(await sanitize('12\n', '12')).toMatchObject({ code: 0, output: 'number=12\n' });
    expect(await sanitize('123456789012345\n')).toMatchObject({ code: 0, output: 'number=123456789012345\n' });
  });

  it.each([
    ['1; rm -rf /', '1; rm -rf /\n'],
    ['12abc', '12abc\n'],
    ['a second line', '12\n13\n'],
    ['a carriage return', '12\r\n'],
    ['no newline', '12'],
    ['an output injection', '12\nnumber=13\n'],
    ['a workflow command', '::set-output name=number::13\n'],
    ['empty', ''],
    ['zero', '0\n'],
    ['a leading zero', '012\n'],
    ['a negative number', '-1\n'],
    ['a command substitution', '$(touch pwned)\n'],
    ['too many digits', '1234567890123456\n'],
    ['a NUL byte', Buffer.from('12\u000013\n')],
  ])('refuses %s without writing an output', async (_, content) => {
    const r = await sanitize(content);
    expect(r.code).not.toBe(0);
    expect(r.output).toBe('');
    expect(r.stdout).toMatch(/::error::the (number the )?modelgate review run recorded/);
    expect(r.stdout).not.toContain('::set-output');
  });

  it("refuses a missing file, a symlink, and a number that is not the run's listed pull request", async () => {
    for (const r of [await sanitize(null), await sanitize(null, '', { symlinkTo: '/etc/hostname' }), await sanitize('12\n', '13')]) {
      expect(r.code).not.toBe(0);
      expect(r.output).toBe('');
    }
    expect((await sanitize('12\n', '13')).stdout).toContain('::error::the modelgate review run recorded #12 but ran for #13');
  });

  it('is valid bash', () => {
    expect(() => execFileSync('bash', ['-n'], { input: script })).not.toThrow();
  });
});

describe('registry-template README and CODEOWNERS', () => {
  const readme = readFileSync(join(import.meta.dirname, '../registry-template/README.md'), 'utf8');
  const codeowners = readFileSync(join(import.meta.dirname, '../registry-template/.github/CODEOWNERS'), 'utf8');

  it('names the settings that make the modelgate status binding, and the threat model of an edited workflow', () => {
    expect(readme).toMatch(/Required status check \*\*`modelgate`, expected source: the gate's GitHub App\*\*/);
    expect(readme).toMatch(/Require branches to be up to date before merging/);
    expect(readme).toMatch(/Require a pull request before merging, with review from Code Owners/);
    expect(readme).toMatch(/Allow rebase merging\*\* off/);
    expect(readme).toContain('### Threat model: a pull request that edits the workflow');
    for (const event of ['pull_request_review', 'pull_request_target', 'workflow_run', 'push']) expect(readme).toContain(`**\`${event}\`**`);
  });

  it('requires approval of the most recent push, and documents unlinkedCommits and the merge queue (here and in the README)', () => {
    expect(readme).toMatch(/\*\*Require approval of the most recent reviewable push\*\* \(ruleset: `require_last_push_approval: true`/);
    const main = readFileSync(join(import.meta.dirname, '../README.md'), 'utf8');
    for (const text of [readme, main]) {
      expect(text).toContain('`unlinkedCommits: allow`');
      expect(text).toContain('`merge_group`');
      expect(text).toContain('gh-readonly-queue/main/*');
      expect(text).toMatch(/most\s+recent\s+(reviewable\s+)?push/);
    }
  });

  it('code-owns the gate, the policy and the configuration', () => {
    const owned = codeowners
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('#'))
      .map((l) => l.split(/\s+/)[0]);
    for (const path of ['/.github/', '/policies/', '/modelgate.yaml']) expect(owned).toContain(path);
  });
});
