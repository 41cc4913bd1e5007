import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');

// Runs the built bundle, as `npm run demo` does; `npm test` builds before the tests start.
describe('npm run demo (dist/demo.js)', () => {
  let dir: string;
  let result: ReturnType<typeof spawnSync>;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'modelgate-demo-test-'));
    result = spawnSync(process.execPath, [join(root, 'dist/demo.js'), join(dir, 'demo')], { cwd: dir, encoding: 'utf8', timeout: 400_000 });
  }, 420_000);

  it('runs the whole lifecycle and exits 0', () => {
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('shows the gate pending, then passing, then refusing v2 for its metric', () => {
    const out = String(result.stdout);
    expect(out).toMatch(/decision: pending[\s\S]*decision: pass/);
    expect(out).toMatch(/churn-predictor@2 \[to-production\] metric auc ≥ 0\.95: auc = 0\.931 is below the minimum 0\.95/);
  });

  it('signs each pass, shows the approvers in history, and verify --decisions names the version that skipped the gate', () => {
    const out = String(result.stdout);
    expect(
      out.match(/signed decision record \(in-toto statement, DSSE envelope\): file:\/\/\S+\/\.modelgate\/decisions\/[0-9a-f]{40}\/[0-9a-f]{64}\.dsse\.json/g),
    ).toHaveLength(5);
    expect(out).toMatch(/Staging → Production +dave +[0-9a-f]{10} +#1 +carol \(to-production, group 1, ml-governance\), dave/);
    // The rollback restores the tree #1 produced; its approvers are those of its own record (SPEC v3 §14), not #1's.
    const rollback = /^.*Archived → Production .* #4 .*$/m.exec(out)?.[0];
    expect(rollback).toMatch(/#4 +erin \(/);
    expect(rollback).not.toMatch(/carol|dave/);
    expect(out).toMatch(/churn-predictor@2 \(Staging, [0-9a-f]{10}\): no decision record for tree [0-9a-f]{40}: merged without the gate/);
    expect(out).not.toMatch(/churn-predictor@1 \(Production/);
    // Alias moves are proven by their records: verify names no alias.
    expect(out).not.toMatch(/churn-predictor@3 \(@/);
  });

  it('sets a challenger (the canary follows it) and promotes it to champion, each move with its approvers', () => {
    const out = String(result.stdout);
    expect(out).toMatch(/@challenger +\(unset\) → v3 +dave +[0-9a-f]{10} +#5 +dave \(challenger, group 1, ml-engineers\)/);
    expect(out).toMatch(/@champion +\(unset\) → v3 +dave +[0-9a-f]{10} +#6 +carol \(champion, group 1, ml-governance\), dave/);
    const registry = join(dir, 'demo', 'registry');
    const manifest = readFileSync(join(registry, 'models/churn-predictor/versions/3.yaml'), 'utf8');
    const sha = /sha256: ([0-9a-f]{64})/.exec(manifest)![1]!;
    const canary = execFileSync('kubectl', ['kustomize', 'deploy/canary'], { cwd: registry, encoding: 'utf8' });
    expect(canary).toContain(`modelgate.dev/sha256: ${sha}`);
    const resolved = JSON.parse(
      execFileSync(process.execPath, [join(root, 'dist/cli.js'), '--json', 'resolve', 'churn-predictor@champion'], { cwd: registry, encoding: 'utf8' }),
    );
    expect(resolved).toMatchObject({ version: 3, sha256: sha });
  });

  it('ends with modelgate serve on the registry, the MLflow client (or its REST call) resolving @champion to v3, and serve stopping gracefully', () => {
    const out = String(result.stdout);
    const registry = join(dir, 'demo', 'registry');
    const sha = /sha256: ([0-9a-f]{64})/.exec(readFileSync(join(registry, 'models/churn-predictor/versions/3.yaml'), 'utf8'))![1]!;
    expect(out).toMatch(/\$ modelgate serve --listen 127\.0\.0\.1:0\S*\s+listening at http:\/\/127\.0\.0\.1:[0-9]+/);
    expect(out).toMatch(new RegExp(`churn-predictor@champion → version 3 \\((None|Staging|Production)\\), sha256 ${sha}`));
    expect(out).toMatch(/serve stopped on SIGTERM after finishing its requests: exit 143/);
  });

  it('leaves a registry whose production pin is v1 with its digest, and a history with the pull requests', () => {
    const registry = join(dir, 'demo', 'registry');
    const manifest = readFileSync(join(registry, 'models/churn-predictor/versions/1.yaml'), 'utf8');
    const sha = /sha256: ([0-9a-f]{64})/.exec(manifest)![1]!;
    const rendered = execFileSync('kubectl', ['kustomize', 'deploy/production'], { cwd: registry, encoding: 'utf8' });
    expect(rendered).toContain(`modelgate.dev/sha256: ${sha}`);
    // The embedded file:// store, served through the claim init named (storage.pvc).
    expect(rendered).toMatch(new RegExp(`storageUri: pvc://modelgate-artifacts/churn-predictor/sha256/${sha}/churn-v1\\.safetensors`));
    expect(rendered).toContain('runtime: churn-logreg');
    const history = JSON.parse(
      execFileSync(process.execPath, [join(root, 'dist/cli.js'), '--json', 'history', 'churn-predictor'], { cwd: registry, encoding: 'utf8' }),
    );
    const rows = (history as Array<{ to: string; pullRequest?: number }>).filter((c) => !('alias' in c));
    expect(rows.map((c: { to: string; pullRequest?: number }) => [c.to, c.pullRequest ?? null])).toEqual([
      ['Staging', null],
      ['Staging', null],
      ['Production', 1],
      ['Archived', 3],
      ['Production', 4],
      ['Staging', null],
    ]);
  });

  it('serves the pages live beside the MLflow answers, and ends by writing the static site and saying how to serve the pages again', () => {
    const out = String(result.stdout);
    const site = join(dir, 'demo', 'site');
    expect(out).toContain(`static site: ${site}/index.html`);
    expect(readFileSync(join(site, 'models/churn-predictor/versions/3/index.html'), 'utf8')).toContain('id="digest"');
    expect(existsSync(join(site, 'assets/app.js'))).toBe(true);
    // The pages answered live by the serve that resolved @champion, from the commit it serves.
    expect(out).toMatch(/curl http:\/\/127\.0\.0\.1:\d+\/models\/churn-predictor\//);
    expect(out).toMatch(/200, X-Modelgate-Commit: [0-9a-f]{40}; live pages at http:\/\/127\.0\.0\.1:\d+\//);
    expect(out).toMatch(/live pages: run npm run modelgate -- --registry \S+ serve, then open http:\/\/127\.0\.0\.1:8080\//);
  });
});
