import { AxeBuilder } from '@axe-core/playwright';
import { generateKeyPairSync } from 'node:crypto';
import { appendFileSync, createReadStream, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ModelVersion } from '../src/manifest/types.js';
import { searchEntry, searchIndexed, searchParts, searchShard, shardMayMatch, type SearchIndex } from '../src/pages/search-index.js';
import { parseWhere } from '../src/query/where.js';
import { buildDecisionStatement, decisionRecordKey, signEnvelope, statementDigest, type DsseEnvelope } from '../src/evidence/decision.js';
import { cli, git, makeRegistry, randomFile, tempDir } from './helpers/artifacts.js';

/**
 * The registry pages in a real browser (SPEC v3 §11): Debian's Chromium (scripts/chromium.sh)
 * driven by playwright-core, over the static site `modelgate pages` writes, served from its files.
 * Screenshots of each page type go to MODELGATE_SCREENSHOTS (default .test-artifacts/pages/).
 */
const SCREENSHOTS = resolve(process.env.MODELGATE_SCREENSHOTS ?? '.test-artifacts/pages');

const setStage = (manifest: string, from: string, to: string) =>
  writeFileSync(manifest, readFileSync(manifest, 'utf8').replace(new RegExp(`^stage: ${from}$`, 'm'), `stage: ${to}`));

function storeRecord(storeRoot: string, envelope: DsseEnvelope): void {
  const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')) as { predicate: { mergedTreeId: string } };
  const path = join(storeRoot, decisionRecordKey(statement.predicate.mergedTreeId, statementDigest(envelope)!));
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(envelope));
}

/** A pin file as sync writes it: only the annotation the pages read matters here. */
const pin = (model: string, version: number) => `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: ${model}
  labels: {app.kubernetes.io/managed-by: modelgate}
  annotations: {modelgate.dev/version: "${version}"}
`;

interface Registry {
  reg: string;
  sha: string[];
}

/** fraud: three versions, v1 → Staging (#5) and v2 → Staging → Production (#6, #7) through signed records; pins name v2 and v1. */
async function buildRegistry(): Promise<Registry> {
  const storeRoot = tempDir('mg-pages-store-');
  const reg = makeRegistry({ uri: pathToFileURL(storeRoot).href });
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const pub = (publicKey.export({ type: 'spki', format: 'pem' }) as string).trimEnd();
  appendFileSync(join(reg, 'modelgate.yaml'), `github: {repository: acme/model-registry}\ntrust:\n  keys:\n    - |\n${pub.replace(/^/gm, '      ')}\n`);
  mkdirSync(join(reg, 'policies'));
  writeFileSync(
    join(reg, 'policies/promotion.yaml'),
    `apiVersion: modelgate.dev/v1
kind: PromotionPolicy
rules:
  - {name: register, to: None, from: [None], approvals: [{count: 1, users: [maria]}]}
  - {name: to-staging, to: Staging, from: [None], approvals: [{count: 1, users: [alice]}]}
  - name: to-production
    to: Production
    from: [Staging]
    approvals: [{count: 1, teams: [ml-governance]}, {count: 1, users: [bob]}]
    metrics: {auc: {min: 0.9}, latency_ms: {max: 120}}
`,
  );
  mkdirSync(join(reg, 'models/fraud'), { recursive: true });
  writeFileSync(
    join(reg, 'models/fraud/model.yaml'),
    'apiVersion: modelgate.dev/v1\nkind: Model\nname: fraud\ndescription: Card fraud <scorer>\nowners: [maria, ml-team]\n',
  );
  git(reg, 'add', '-A');
  git(reg, 'commit', '-qm', 'policy, trust and the fraud model');
  const priv = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const metrics = [
    ['auc=0.91', 'latency_ms=90'],
    ['auc=0.95', 'latency_ms=80'],
    ['auc=0.88', 'latency_ms=130'],
  ];
  const sha: string[] = [];
  for (const [i, m] of metrics.entries()) {
    const file = randomFile(tempDir(), 'model.onnx', 2000 + i);
    const r = await cli(reg, [
      'register',
      'fraud',
      file.path,
      ...m.flatMap((x) => ['--metric', x]),
      '--param',
      `n_estimators=${100 * (i + 1)}`,
      '--code',
      `https://github.com/acme/fraud@${String(i + 1).repeat(40)}`,
      '--dataset',
      `id=txn-2026-q${i + 1},uri=s3://data/txn-${i + 1}.parquet`,
      '--run',
      `id=run-${i + 1},url=https://ci.example/run/${i + 1}`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    sha.push(readFileSync(join(reg, `models/fraud/versions/${i + 1}.yaml`), 'utf8').match(/sha256: ([0-9a-f]{64})/)![1]!);
  }
  const move = (version: number, from: string, to: string, pr: number, approvers: Array<{ login: string; group: number; team?: string; rule?: string }>) => {
    setStage(join(reg, `models/fraud/versions/${version}.yaml`), from, to);
    git(reg, 'commit', '-qam', `Promote fraud@${version} to ${to} (#${pr})`);
    const input = {
      repository: 'acme/model-registry',
      pullRequest: pr,
      baseSha: git(reg, 'rev-parse', 'HEAD^').trim(),
      headSha: '1'.repeat(40),
      baseTreeId: git(reg, 'rev-parse', 'HEAD^^{tree}').trim(),
      mergedTreeId: git(reg, 'rev-parse', 'HEAD^{tree}').trim(),
      policyBlobId: '2'.repeat(40),
      rules: [{ name: to === 'Production' ? 'to-production' : 'to-staging', passed: true }],
      approvers,
      checks: [
        { kind: 'metrics', passed: true, details: { auc: 'ok' } },
        { kind: 'scan', passed: true, details: { findings: 0 } },
      ],
      time: '2026-12-02T09:00:00Z',
      subjects: [{ model: 'fraud', version, sha256: sha[version - 1]!, from, to }],
    };
    storeRecord(storeRoot, signEnvelope(buildDecisionStatement(input), priv));
  };
  move(1, 'None', 'Staging', 5, [{ login: 'alice', group: 0, rule: 'to-staging' }]);
  move(2, 'None', 'Staging', 6, [{ login: 'alice', group: 0, rule: 'to-staging' }]);
  move(2, 'Staging', 'Production', 7, [
    { login: 'carol', group: 0, team: 'ml-governance', rule: 'to-production' },
    { login: 'bob', group: 1, rule: 'to-production' },
  ]);
  // fraud@champion → v2 through #8, with its signed record.
  writeFileSync(join(reg, 'models/fraud/aliases.yaml'), 'apiVersion: modelgate.dev/v1\nkind: ModelAliases\nmodel: fraud\naliases: {champion: 2}\n');
  git(reg, 'add', '-A');
  git(reg, 'commit', '-qm', 'Set fraud@champion to v2 (#8)');
  storeRecord(
    storeRoot,
    signEnvelope(
      buildDecisionStatement({
        repository: 'acme/model-registry',
        pullRequest: 8,
        baseSha: git(reg, 'rev-parse', 'HEAD^').trim(),
        headSha: '3'.repeat(40),
        baseTreeId: git(reg, 'rev-parse', 'HEAD^^{tree}').trim(),
        mergedTreeId: git(reg, 'rev-parse', 'HEAD^{tree}').trim(),
        policyBlobId: '2'.repeat(40),
        rules: [{ name: 'champion', passed: true }],
        approvers: [{ login: 'dave', group: 0, rule: 'champion' }],
        checks: [],
        time: '2026-12-03T09:00:00Z',
        subjects: [{ model: 'fraud', version: 2, sha256: sha[1]!, alias: 'champion' }],
      }),
      priv,
    ),
  );
  mkdirSync(join(reg, 'deploy/production'), { recursive: true });
  mkdirSync(join(reg, 'deploy/staging'), { recursive: true });
  writeFileSync(join(reg, 'deploy/production/fraud.yaml'), pin('fraud', 2));
  writeFileSync(join(reg, 'deploy/staging/fraud.yaml'), pin('fraud', 1));
  git(reg, 'add', '-A');
  git(reg, 'commit', '-qm', 'pins');
  return { reg, sha };
}

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json' };

/** The static site's files over loopback HTTP, as GitHub Pages serves them: a folder answers with its index.html. */
function serveFolder(root: string): Promise<Server> {
  const server = createServer((req, res) => {
    let path = join(root, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    if (!path.startsWith(root)) return res.writeHead(403).end();
    if (existsSync(path) && statSync(path).isDirectory()) path = join(path, 'index.html');
    if (!existsSync(path)) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': TYPES[extname(path)] ?? 'application/octet-stream' });
    createReadStream(path).pipe(res);
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server)));
}

function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

interface PagesSession {
  open: (url: string, options?: { javaScript?: boolean }) => Promise<Page>;
  /** axe reports no serious or critical violation, the screenshot is written, nothing went wrong on the page. */
  check: (page: Page, name: string) => Promise<void>;
}

/** Pages opened in `browser` from `base`: console errors, failed requests and requests that leave loopback go to `problems`. */
function pagesIn(browser: Browser, base: string, problems: string[]): PagesSession {
  return {
    open: async (url, options = {}) => {
      const context = await browser.newContext({ javaScriptEnabled: options.javaScript ?? true, viewport: { width: 1280, height: 900 } });
      const page = await context.newPage();
      page.on('console', (m) => m.type() === 'error' && problems.push(`${url}: console: ${m.text()} at ${m.location().url}`));
      page.on('response', (r) => r.status() >= 400 && problems.push(`${url}: HTTP ${r.status()} for ${r.url()}`));
      page.on('pageerror', (e) => problems.push(`${url}: ${e.message}`));
      page.on('request', (r) => {
        const u = r.url();
        if (!u.startsWith(base) && !u.startsWith('file:') && !u.startsWith('data:')) problems.push(`${url}: external request ${u}`);
      });
      await page.goto(url);
      return page;
    },
    check: async (page, name) => {
      const axe = await new AxeBuilder({ page }).analyze();
      const serious = axe.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      expect(serious.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)).toEqual([]);
      await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
      expect(problems).toEqual([]);
    },
  };
}

describe('registry pages in Chromium', () => {
  let browser: Browser;
  let server: Server;
  let base: string;
  let out: string;
  let registry: Registry;
  /** Console errors, page errors and requests that leave loopback, per page. */
  const problems: string[] = [];
  let open: PagesSession['open'];
  let check: PagesSession['check'];

  beforeAll(async () => {
    registry = await buildRegistry();
    out = join(tempDir('mg-pages-out-'), 'site');
    const r = await cli(registry.reg, ['pages', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ models: 1, versions: 3 });
    server = await serveFolder(out);
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    mkdirSync(SCREENSHOTS, { recursive: true });
    browser = await launchChromium();
    ({ open, check } = pagesIn(browser, base, problems));
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((ok) => (server ? server.close(ok) : ok(undefined)));
  });

  afterEach(async () => {
    for (const c of browser.contexts()) await c.close();
  });

  it('the models page: badges, owners, what each environment serves, the last change; keyboard to a model', async () => {
    const page = await open(base);
    const row = page.locator('tr[data-model=fraud]');
    await expect.poll(() => row.locator('.badge').allTextContents()).toEqual(['Production v2', 'Staging v1', '@champion v2']);
    expect(await row.textContent()).toContain('maria, ml-team');
    expect((await row.locator('.serving li').allTextContents()).map((t) => t.replace(/\s+/g, ' ').trim())).toEqual(['staging v1', 'production v2']);
    expect(await row.locator('td').nth(3).textContent()).toMatch(/@champion \(unset\) → v2/);
    await check(page, 'index');
    // Keyboard: the skip link first, then the breadcrumb, the search field, its button, the model's link.
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    await page.keyboard.press('Enter');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('main');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('fraud');
    await Promise.all([page.waitForURL(`${base}models/fraud/`), page.keyboard.press('Enter')]);
    await page.context().close();
  });

  it('a model page: one chart per metric with its threshold lines, versions sortable and filtered with --where, the timeline with approvers', async () => {
    const page = await open(`${base}models/fraud/`);
    expect(await page.locator('h1').textContent()).toBe('fraud');
    expect(await page.locator('main > p').first().textContent()).toBe('Card fraud <scorer>');
    const auc = page.locator('figure[data-chart=auc] .chart-canvas');
    await expect.poll(() => auc.getAttribute('data-series')).toBe('2');
    expect(await auc.getAttribute('data-thresholds')).toBe('1');
    expect(await page.locator('figure[data-chart=auc] canvas').count()).toBe(1);
    expect(await page.locator('figure[data-chart=latency_ms] .chart-canvas').getAttribute('data-thresholds')).toBe('1');
    expect(await page.locator('figure[data-chart=auc] figcaption').textContent()).toContain('min 0.9 (to-production)');
    const versions = () => page.locator('#versions-table tbody tr:visible').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.version));
    expect(await versions()).toEqual(['3', '2', '1']);
    await page.getByRole('button', { name: 'auc' }).click();
    expect(await versions()).toEqual(['3', '1', '2']);
    // `/` focuses the filter; the --where grammar of the CLI filters the rows.
    await page.locator('body').press('/');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('where');
    await page.keyboard.type('metrics.auc >= 0.9 and parameters.n_estimators != 100');
    expect(await versions()).toEqual(['2']);
    await page.locator('#where').fill('metrics.auc >');
    await expect.poll(() => page.locator('.where-error').first().textContent()).toMatch(/column/);
    const promotion = page.locator('table.timeline tr', { hasText: 'Staging → Production' });
    expect(await promotion.locator('.approvers li').allTextContents()).toEqual([
      'carol (to-production, group 1, team ml-governance)',
      'bob (to-production, group 2)',
    ]);
    expect(await promotion.locator('a[href$="/pull/7"]').count()).toBe(1);
    // The alias move, with its approver and pull request, in the same timeline.
    const aliasMove = page.locator('table.timeline tr[data-kind=alias]');
    expect(await aliasMove.locator('.badge.alias').textContent()).toBe('@champion');
    expect((await aliasMove.locator('td').nth(2).textContent())!.replace(/\s+/g, ' ').trim()).toBe('(unset) → v2');
    expect(await aliasMove.locator('.approvers li').allTextContents()).toEqual(['dave (champion, group 1)']);
    expect(await aliasMove.locator('a[href$="/pull/8"]').count()).toBe(1);
    expect(await page.locator('.facts .badge.alias').textContent()).toBe('@champion v2');
    await page.locator('#where').fill('');
    await check(page, 'model');
    // What was in Production at a time after the promotion.
    await page.locator('#at').fill('2099-01-01T00:00:00');
    await expect.poll(() => page.locator('[data-at-answer]').textContent()).toBe('v2');
    await page.context().close();
  });

  it('a version page: digest, metrics, parameters, the lineage graph laid out by dagre, decision records verified against trust.keys', async () => {
    const page = await open(`${base}models/fraud/versions/2/`);
    expect(await page.locator('#digest').textContent()).toBe(registry.sha[1]);
    expect(await page.locator('#metrics-table').textContent()).toContain('0.95');
    expect(await page.locator('#params-table').textContent()).toContain('200');
    const svg = page.locator('svg.lineage');
    expect(await svg.getAttribute('data-nodes')).toBe('5'); // code, data, run, artifact, production
    expect(await svg.locator('g.node-environment').textContent()).toContain('production');
    expect(await svg.locator('path.edge').count()).toBe(4);
    expect(await page.locator('h1 .badge.alias').textContent()).toBe('@champion');
    const decisions = page.locator('article.decision[data-decision=verified]');
    expect(await decisions.count()).toBe(3); // to Staging (#6), to Production (#7), @champion (#8)
    expect(await decisions.nth(1).locator('.approvers li').allTextContents()).toEqual([
      'carol (to-production, group 1, team ml-governance)',
      'bob (to-production, group 2)',
    ]);
    expect(await decisions.nth(1).locator('tr[data-check=scan]').count()).toBe(1);
    expect((await decisions.nth(2).locator('h3').textContent())!.replace(/\s+/g, ' ').trim()).toMatch(/^@champion \(unset\) → v2 · #8/);
    expect(await decisions.nth(2).locator('.approvers li').allTextContents()).toEqual(['dave (champion, group 1)']);
    await check(page, 'version');
    await page.context().close();
  });

  it('compare and search: versions side by side from the model page, search with the --where grammar from the header', async () => {
    const page = await open(`${base}models/fraud/`);
    await page.getByLabel('compare v1').check();
    await page.getByLabel('compare v3').check();
    await Promise.all([page.waitForURL(/compare\/\?v=3&v=1$/), page.getByRole('button', { name: 'Compare selected versions' }).click()]);
    await expect.poll(() => page.locator('#compare-table thead th:visible').allTextContents()).toEqual(['Field', 'v1', 'v3']);
    expect(await page.locator('#compare-table tr.differs th', { hasText: 'auc' }).count()).toBe(1);
    expect(await page.locator('#compare-table tr.differs th', { hasText: 'code.repository' }).count()).toBe(0);
    expect(await page.locator('[data-compare-note]').textContent()).toBe('Versions 1, 3.');
    await check(page, 'compare');
    await page.locator('#top-q').fill("stage = 'Production' or metrics.auc < 0.9");
    await Promise.all([page.waitForURL(/search\/\?q=/), page.locator('#top-q').press('Enter')]);
    await expect.poll(() => page.locator('#search-results table a').allTextContents()).toEqual(['fraud@2', 'fraud@3']);
    expect(await page.locator('#search-results').getAttribute('data-searched')).toBe('fraud');
    await check(page, 'search');
    await page.context().close();
  });

  it('with JavaScript off everything but the charts is there; a page opened from its file works too', async () => {
    const page = await open(`${base}models/fraud/versions/2/`, { javaScript: false });
    expect(await page.locator('#digest').textContent()).toBe(registry.sha[1]);
    expect(await page.locator('svg.lineage g.node').count()).toBe(5);
    await page.goto(`${base}models/fraud/`);
    expect(await page.locator('#versions-table tbody tr').count()).toBe(3);
    expect(await page.locator('table.timeline .approvers li').count()).toBe(5);
    await page.context().close();
    const file = await open(pathToFileURL(join(out, 'models/fraud/versions/1/index.html')).href);
    expect(await file.locator('#digest').textContent()).toBe(registry.sha[0]);
    expect(await file.locator('svg.lineage g.node-environment').textContent()).toContain('staging');
    expect(problems).toEqual([]);
    await file.context().close();
  });
});

describe('the pages by URL, as serve answers them', () => {
  it('renders each path from the read models, with search and compare answered on the server; no page is undefined', async () => {
    const { reg, sha } = await buildRegistry();
    const { GitRepo } = await import('../src/git/repo.js');
    const { RegistrySnapshot } = await import('../src/registry/snapshot.js');
    const { WorktreeSource } = await import('../src/registry/source.js');
    const { openPagesReader } = await import('../src/pages/read-model.js');
    const { renderPagePath } = await import('../src/pages/routes.js');
    const reader = await openPagesReader(new RegistrySnapshot(new WorktreeSource(reg)), new GitRepo(reg), {});
    const at = (path: string) => renderPagePath(reader, new URL(path, 'http://serve.local'), 'test');
    try {
      expect(await at('/')).toContain('data-model="fraud"');
      expect(await at('/models/fraud/versions/2/')).toContain(`<code id="digest">${sha[1]}</code>`);
      expect(await at('/models/fraud/versions/2')).toContain('href="../../../../assets/app.css"');
      const compare = (await at('/models/fraud/compare/?v=1&v=3'))!;
      expect([...compare.matchAll(/<th scope="col" data-v="(\d+)"/g)].map((m) => m[1])).toEqual(['1', '3']);
      const search = (await at(`/search/?q=${encodeURIComponent("stage = 'Production' or metrics.auc < 0.9")}`))!;
      expect([...search.matchAll(/>(fraud@\d+)<\/a>/g)].map((m) => m[1])).toEqual(['fraud@2', 'fraud@3']);
      await expect(at('/search/?q=metrics.auc%20%3E')).rejects.toMatchObject({ code: 'E_WHERE_SYNTAX' });
      for (const missing of ['/models/nope/', '/models/fraud/versions/9/', '/models/fraud/page/2/', '/models/Fraud/', '/elsewhere/']) {
        expect(await at(missing), missing).toBeUndefined();
      }
    } finally {
      reader.store?.close();
    }
  });
});

describe('search as serve answers it, from the index it keeps of the commit served', () => {
  it('answers every query as a scan of every manifest does, on a generated registry of 1,000 versions; a malformed query is a 400 page', async () => {
    const reg = makeRegistry({ uri: pathToFileURL(tempDir('mg-pages-store-')).href });
    const counts: Record<string, number> = { alpha: 600, beta: 395, gamma: 5 };
    for (const [model, n] of Object.entries(counts)) {
      mkdirSync(join(reg, `models/${model}/versions`), { recursive: true });
      writeFileSync(join(reg, `models/${model}/model.yaml`), `apiVersion: modelgate.dev/v1\nkind: Model\nname: ${model}\n`);
      for (let v = 1; v <= n; v++) {
        const sha = `${model.length}${v}`.padStart(64, '0');
        const stage = v === n - 1 ? 'Production' : v === n ? 'Staging' : v % 7 === 0 ? 'Archived' : 'None';
        // alpha's auc rises with the version, beta's falls, gamma has a loss instead.
        const metric = model === 'gamma' ? `loss: ${v / 10}` : `auc: ${model === 'alpha' ? v / 1000 : 1 - v / 1000}`;
        writeFileSync(
          join(reg, `models/${model}/versions/${v}.yaml`),
          `apiVersion: modelgate.dev/v1\nkind: ModelVersion\nmodel: ${model}\nversion: ${v}\nstage: ${stage}\ncreatedAt: "2026-11-${String(1 + (v % 28)).padStart(2, '0')}T10:00:00Z"\n` +
            `createdBy: ${v % 2 ? 'maria' : 'ci'}\nartifact:\n  uri: ${pathToFileURL(tempDir()).href}/${model}/sha256/${sha}/m.onnx\n  sha256: "${sha}"\n  size: ${v}\n` +
            `format: ${v % 3 ? 'onnx' : 'pickle'}\nmetrics: {${metric}}\nparameters: {depth: ${v % 9}}\nannotations: {team: ${v % 4 ? 'risk' : 'growth'}}\n`,
        );
      }
    }
    git(reg, 'add', '-A');
    git(reg, 'commit', '-qm', 'generated');
    const { GitRepo } = await import('../src/git/repo.js');
    const { RegistrySnapshot } = await import('../src/registry/snapshot.js');
    const { WorktreeSource } = await import('../src/registry/source.js');
    const { openPagesReader } = await import('../src/pages/read-model.js');
    const { ModelViewCache, renderPagePath } = await import('../src/pages/routes.js');
    const { TokenTable } = await import('../src/serve/access.js');
    const { ServedRegistry } = await import('../src/serve/served-registry.js');
    const { buildServer } = await import('../src/serve/server.js');
    const reader = await openPagesReader(new RegistrySnapshot(new WorktreeSource(reg)), new GitRepo(reg), {});
    const served = await ServedRegistry.local(reg, { ...process.env, GITHUB_TOKEN: '', GH_TOKEN: '' });
    const { app } = await buildServer({ registry: served, tokens: TokenTable.empty(), logger: false });
    const results = (page: string) => page.slice(page.indexOf('<div id="search-results"'), page.indexOf('</div>', page.indexOf('<div id="search-results"')));
    const matched = (page: string) => [...page.matchAll(/>([a-z]+@\d+)<\/a>/g)].map((m) => m[1]);
    try {
      const queries = [
        'metrics.auc > 0.55',
        "stage = 'production'",
        "model = 'beta' and metrics.auc <= 0.7",
        "metrics.auc < 0.004 or stage = 'Staging'",
        'parameters.depth IN (3, 5) and version > 380',
        "format = 'pickle' and annotations.team LIKE 'gr%' and version < 40",
        "createdBy = 'maria' and metrics.loss >= 0.3",
        'metrics.auc != 0.5 and version >= 598',
        "createdAt >= '2026-11-05' and model ILIKE 'GAM%'",
        'metrics.auc > 2',
        "metrics.loss > 0 and model = 'alpha'",
        'artifact.size = 7',
      ];
      // The pages read through the snapshot serve holds for the commit (its API's), not a copy of their own.
      const reads = vi.spyOn((await served.current()).snapshot, 'versions');
      const sizes: number[] = [];
      for (const q of queries) {
        const path = `/search/?q=${encodeURIComponent(q)}`;
        const scanned = (await renderPagePath(reader, new URL(path, 'http://serve.local'), 'test'))!;
        const answered = await app.inject({ url: path });
        expect(answered.statusCode, q).toBe(200);
        expect(results(answered.body), q).toBe(results(scanned));
        sizes.push(matched(scanned).length);
      }
      expect(sizes).toEqual([445, 3, 96, 6, 54, 6, 2, 3, 2, 0, 0, 2]);
      expect(reads.mock.calls.map(([model]) => model)).toEqual(['alpha', 'beta', 'gamma']);
      const page = await app.inject({ url: '/models/gamma/versions/2/' });
      expect(page.headers['x-modelgate-commit']).toBe(git(reg, 'rev-parse', 'HEAD').trim());
      expect(reads.mock.calls.map(([model]) => model)).toEqual(['alpha', 'beta', 'gamma', 'gamma']);
      expect(results((await app.inject({ url: `/search/?q=${encodeURIComponent('metrics.auc > 2')}` })).body)).toContain('<p>0 versions match.</p>');
      const bad = await app.inject({ url: `/search/?q=${encodeURIComponent("metrics.auc > 0.5 and (stage = 'None'")}` });
      expect(bad.statusCode).toBe(400);
      expect(bad.body).toMatch(/<output class="where-error"[^>]*>[^<]+<\/output>/);
      await expect(renderPagePath(reader, new URL('/search/?q=metrics.auc%20%3E', 'http://serve.local'), 'test')).rejects.toMatchObject({
        code: 'E_WHERE_SYNTAX',
      });
      // One index per commit: asked again for the same commit, the same one is answered.
      const views = new ModelViewCache();
      const head = git(reg, 'rev-parse', 'HEAD').trim();
      const index = views.search(reader, head);
      expect(views.search(reader, head)).toBe(index);
      expect((await index).map((p) => [p.shard.model, p.shard.versions])).toEqual([
        ['alpha', 256],
        ['alpha', 256],
        ['alpha', 88],
        ['beta', 256],
        ['beta', 139],
        ['gamma', 5],
      ]);
    } finally {
      reader.store?.close();
      await app.close();
      await served.close();
    }
  }, 120_000);
});

describe('the search index', () => {
  const version = (model: string, stage: string, auc?: number) =>
    ({ model, version: 1, stage, format: 'onnx', metrics: auc === undefined ? {} : { auc }, artifact: { files: [{ path: 'a' }] } }) as unknown as ModelVersion;
  const fraud = searchShard('fraud', [version('fraud', 'Production', 0.91), version('fraud', 'None', 0.95)]);
  const churn = searchShard('churn', [version('churn', 'Staging')]);

  it('summarizes each model and keeps a shard only when some version may match (AND and OR, no NOT: never drops a match)', () => {
    expect(fraud).toMatchObject({ stages: ['Production', 'None'], metrics: { auc: [0.91, 0.95] } });
    const may = (where: string) => [fraud, churn].filter((s) => shardMayMatch(parseWhere(where), s)).map((s) => s.model);
    expect(may("model = 'churn'")).toEqual(['churn']);
    expect(may("model LIKE 'fr%'")).toEqual(['fraud']);
    expect(may("stage = 'staging'")).toEqual(['churn']);
    expect(may('metrics.auc > 0.95')).toEqual([]);
    expect(may('metrics.auc >= 0.95')).toEqual(['fraud']);
    expect(may('metrics.auc != 1')).toEqual(['fraud']); // churn has no auc: a missing field never matches
    expect(may("metrics.auc < 0.5 or stage = 'Staging'")).toEqual(['churn']);
    expect(may("parameters.depth = 3 and model = 'fraud'")).toEqual(['fraud']);
    expect(searchEntry(version('fraud', 'None')).artifact).toEqual({});
    // serve's index: a part ruled out by its summary is never parsed (this one's text is not JSON).
    const parts = [...searchParts('fraud', [version('fraud', 'Production', 0.91)]), { shard: churn, rows: 'not json' }];
    expect(searchIndexed(parts, parseWhere("stage = 'production'")).map((v) => v.model)).toEqual(['fraud']);
    expect(() => searchIndexed(parts, parseWhere("model = 'churn'"))).toThrow(SyntaxError);
  });
});

describe('modelgate pages, the static export', () => {
  it('pages a model of 120 versions 50 at a time, newest first, and writes a page and a search entry for each version', async () => {
    const reg = makeRegistry({ uri: pathToFileURL(tempDir('mg-pages-store-')).href });
    mkdirSync(join(reg, 'models/big/versions'), { recursive: true });
    writeFileSync(join(reg, 'models/big/model.yaml'), 'apiVersion: modelgate.dev/v1\nkind: Model\nname: big\n');
    for (let v = 1; v <= 120; v++) {
      const sha = `${v}`.padStart(64, '0');
      writeFileSync(
        join(reg, `models/big/versions/${v}.yaml`),
        `apiVersion: modelgate.dev/v1\nkind: ModelVersion\nmodel: big\nversion: ${v}\nstage: None\ncreatedAt: "2026-11-27T10:00:00Z"\nartifact:\n  uri: ${pathToFileURL(tempDir()).href}/big/sha256/${sha}/m.onnx\n  sha256: "${sha}"\n  size: 1\nformat: onnx\nmetrics: {auc: 0.${v}}\n`,
      );
    }
    git(reg, 'add', '-A');
    git(reg, 'commit', '-qm', 'big');
    const out = join(tempDir('mg-pages-out-'), 'site');
    const r = await cli(reg, ['pages', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ models: 1, versions: 120, pages: 3 + 1 + 120 + 2 });
    const rows = (path: string) => {
      const page = readFileSync(join(out, path), 'utf8');
      const table = page.slice(page.indexOf('id="versions-table"'), page.indexOf('</table>', page.indexOf('id="versions-table"')));
      return [...table.matchAll(/<tr data-version="(\d+)"/g)].map((m) => Number(m[1]));
    };
    expect(rows('models/big/index.html')).toEqual(Array.from({ length: 50 }, (_, i) => 120 - i));
    expect(rows('models/big/page/2/index.html')).toEqual(Array.from({ length: 50 }, (_, i) => 70 - i));
    expect(rows('models/big/page/3/index.html')).toEqual(Array.from({ length: 20 }, (_, i) => 20 - i));
    expect(existsSync(join(out, 'models/big/versions/120/index.html'))).toBe(true);
    // The search index: a small summary, and one file of versions per model.
    const index = JSON.parse(readFileSync(join(out, 'search/index.json'), 'utf8')) as SearchIndex;
    expect(index.shards).toEqual([
      { model: 'big', file: 'models/big.json', versions: 120, stages: ['None'], formats: ['onnx'], metrics: { auc: [0.1, 0.99] } },
    ]);
    const versions = JSON.parse(readFileSync(join(out, 'search/models/big.json'), 'utf8')) as Array<{ model: string; version: number }>;
    expect(versions.map((v) => v.version)).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
  });

  it('needs exactly one output folder (exit 2)', async () => {
    const reg = makeRegistry({ uri: pathToFileURL(tempDir('mg-pages-store-')).href });
    const r = await cli(reg, ['pages', '--json']);
    expect(r.code).toBe(2);
    expect(r.json).toMatchObject({ error: { code: 'E_USAGE' } });
  });
});

describe('the pages served live by modelgate serve, in Chromium', () => {
  let browser: Browser;
  let registry: Registry;
  let origin: string;
  let base: string;
  let close: () => Promise<void>;
  const problems: string[] = [];
  let open: PagesSession['open'];
  let check: PagesSession['check'];
  /** With MODELGATE_DOCS_SCREENSHOTS=1 the README's screenshots (docs/pages-*.png) are written again from this run. */
  const docs = process.env.MODELGATE_DOCS_SCREENSHOTS === '1' ? resolve(import.meta.dirname, '../docs') : undefined;

  beforeAll(async () => {
    registry = await buildRegistry();
    // The remote, with two promotions waiting on their branches.
    origin = join(tempDir('mg-pages-origin-'), 'reg.git');
    git(tempDir(), 'init', '-q', '--bare', '-b', 'main', origin);
    git(registry.reg, 'remote', 'add', 'origin', origin);
    git(registry.reg, 'push', '-q', 'origin', 'main');
    for (const [branch, from, to] of [
      ['modelgate/fraud-v3-staging', 'None', 'Staging'],
      ['modelgate/alias/fraud/challenger', '', ''],
    ] as const) {
      git(registry.reg, 'checkout', '-q', '-b', branch);
      if (from) setStage(join(registry.reg, 'models/fraud/versions/3.yaml'), from, to);
      else
        writeFileSync(
          join(registry.reg, 'models/fraud/aliases.yaml'),
          'apiVersion: modelgate.dev/v1\nkind: ModelAliases\nmodel: fraud\naliases: {champion: 2, challenger: 3}\n',
        );
      git(registry.reg, 'commit', '-qam', branch);
      git(registry.reg, 'push', '-q', 'origin', branch);
      git(registry.reg, 'checkout', '-q', 'main');
    }
    const { TokenTable } = await import('../src/serve/access.js');
    const { ServedRegistry } = await import('../src/serve/served-registry.js');
    const { buildServer } = await import('../src/serve/server.js');
    const env = { ...process.env, GITHUB_TOKEN: '', GH_TOKEN: '' };
    const served = await ServedRegistry.local(registry.reg, env);
    const { app } = await buildServer({ registry: served, tokens: TokenTable.empty(), logger: false });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/`;
    close = async () => {
      await app.close();
      await served.close();
    };
    mkdirSync(SCREENSHOTS, { recursive: true });
    browser = await launchChromium();
    ({ open, check } = pagesIn(browser, base, problems));
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await close?.();
  });

  afterEach(async () => {
    for (const c of browser.contexts()) await c.close();
  });

  it('answers / from the commit it serves, with badges and the open promotions listed from the remote branches', async () => {
    const head = git(registry.reg, 'rev-parse', 'HEAD').trim();
    const res = await fetch(base);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-modelgate-commit')).toBe(head);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const page = await open(base);
    await expect.poll(() => page.locator('tr[data-model=fraud] .badge').allTextContents()).toEqual(['Production v2', 'Staging v1', '@champion v2']);
    expect(await page.locator('footer').textContent()).toContain(`acme/model-registry at ${head.slice(0, 12)}`);
    expect(await page.locator('[data-open-source]').getAttribute('data-open-source')).toBe('branches');
    expect(await page.locator('.open-promotions li').evaluateAll((items) => items.map((i) => (i as HTMLElement).dataset.branch))).toEqual([
      'modelgate/alias/fraud/challenger',
      'modelgate/fraud-v3-staging',
    ]);
    expect((await page.locator('.open-promotions li').last().textContent())!.replace(/\s+/g, ' ')).toContain('(fraud v3 to Staging)');
    await check(page, 'serve-index');
    await page.context().close();
  });

  it("a model page: charts, the timeline of stage and alias changes with approvers, the model's open promotions", async () => {
    const page = await open(`${base}models/fraud/`);
    await expect.poll(() => page.locator('figure[data-chart=auc] .chart-canvas').getAttribute('data-series')).toBe('2');
    const rows = page.locator('table.timeline tbody tr');
    expect(await rows.evaluateAll((r) => r.map((x) => `${(x as HTMLElement).dataset.kind}:${(x as HTMLElement).dataset.to}`))).toEqual([
      'alias:2',
      'stage:Production',
      'stage:Staging',
      'stage:Staging',
      'stage:None',
      'stage:None',
      'stage:None',
    ]);
    expect(await page.locator('table.timeline tr[data-kind=alias] .approvers li').allTextContents()).toEqual(['dave (champion, group 1)']);
    expect(await page.locator('.open-promotions li').count()).toBe(2);
    await check(page, 'serve-model');
    if (docs) await page.screenshot({ path: join(docs, 'pages-model.png'), fullPage: true });
    await page.context().close();
  });

  it('a version page: the digest, the lineage graph and the decision records, as the static site has them', async () => {
    const page = await open(`${base}models/fraud/versions/2/`);
    expect(await page.locator('#digest').textContent()).toBe(registry.sha[1]);
    expect(await page.locator('svg.lineage').getAttribute('data-nodes')).toBe('5');
    expect(await page.locator('article.decision[data-decision=verified]').count()).toBe(3);
    await check(page, 'serve-version');
    if (docs) await page.screenshot({ path: join(docs, 'pages-version.png'), fullPage: true });
    await page.context().close();
  });

  it('search and compare are answered by serve; a malformed query is a 400 page naming the error, a path with no page a 404 page', async () => {
    const page = await open(`${base}models/fraud/`);
    await page.locator('#top-q').fill("stage = 'Production' or metrics.auc < 0.9");
    await Promise.all([page.waitForURL(/search\/\?q=/), page.locator('#top-q').press('Enter')]);
    expect(await page.locator('#search-results').getAttribute('data-answered')).toBe('');
    expect(await page.locator('#search-results table a').allTextContents()).toEqual(['fraud@2', 'fraud@3']);
    await check(page, 'serve-search');
    await page.goto(`${base}models/fraud/compare/?v=1&v=3`);
    expect(await page.locator('#compare-table thead th').allTextContents()).toEqual(['Field', 'v1', 'v3']);
    await page.context().close();
    const bad = await fetch(`${base}search/?q=${encodeURIComponent('metrics.auc >')}`);
    expect(bad.status).toBe(400);
    expect(await bad.text()).toMatch(/<output class="where-error"[^>]*>[^<]+<\/output>/);
    for (const missing of ['models/nope/', 'models/fraud/versions/9/', 'models/Fraud/']) {
      const r = await fetch(`${base}${missing}`);
      expect(r.status, missing).toBe(404);
      expect(r.headers.get('content-type')).toMatch(/^text\/html/);
    }
    const slashless = await fetch(`${base}models/fraud/versions/2?x=1`, { redirect: 'manual' });
    expect(slashless.status).toBe(308);
    expect(slashless.headers.get('location')).toBe('/models/fraud/versions/2/?x=1');
    expect((await fetch(`${base}assets/app.js`)).headers.get('content-type')).toMatch(/^text\/javascript/);
    expect((await fetch(`${base}assets/other.js`)).status).toBe(404);
  });

  it('serves a new commit after a refresh, and lists the open pull requests from GitHub when it has a repository and a token', async () => {
    const { startGitHubEmulator } = await import('../src/local/github-emulator.js');
    const { TokenTable } = await import('../src/serve/access.js');
    const { ServedRegistry } = await import('../src/serve/served-registry.js');
    const { buildServer } = await import('../src/serve/server.js');
    const gh = await startGitHubEmulator();
    const repo = gh.addRepo('acme', 'model-registry');
    gh.addUser('maria');
    const head = git(registry.reg, 'rev-parse', 'HEAD').trim();
    gh.createPull({
      repo,
      head: 'modelgate/fraud-v3-staging',
      base: 'main',
      user: 'maria',
      title: 'Promote fraud@3 to Staging',
      headSha: '4'.repeat(40),
      baseSha: head,
    });
    gh.createPull({ repo, head: 'docs-typo', base: 'main', user: 'maria', title: 'Fix a typo', headSha: '5'.repeat(40), baseSha: head });
    const served = await ServedRegistry.local(registry.reg, { ...process.env, GITHUB_TOKEN: 'token-maria', GITHUB_API_URL: gh.url });
    const { app } = await buildServer({ registry: served, tokens: TokenTable.empty(), logger: false });
    try {
      const index = await app.inject({ url: '/' });
      expect(index.body).toContain('data-open-source="github"');
      const items = [...index.body.matchAll(/<li data-branch="([^"]+)">\s*<a href="([^"]+)">#(\d+)<\/a>/g)].map((m) => [m[1], m[3]]);
      expect(items).toEqual([['modelgate/fraud-v3-staging', '1']]);
      writeFileSync(
        join(registry.reg, 'models/fraud/model.yaml'),
        'apiVersion: modelgate.dev/v1\nkind: Model\nname: fraud\ndescription: Card fraud v2\nowners: [maria]\n',
      );
      git(registry.reg, 'commit', '-qam', 'describe fraud again');
      await served.refresh();
      const after = await app.inject({ url: '/models/fraud/' });
      expect(after.headers['x-modelgate-commit']).toBe(git(registry.reg, 'rev-parse', 'HEAD').trim());
      expect(after.body).toContain('Card fraud v2');
      // With --private-reads a page needs a bearer token as the API does; a browser sends none, and is told so on a 401 page.
      const token = 'tok-maria-0123456789abcdef';
      const { app: closed } = await buildServer({
        registry: served,
        tokens: TokenTable.parse(`maria ${token}\n`, 'tokens'),
        privateReads: true,
        logger: false,
      });
      try {
        for (const [url, authorization] of [
          ['/', undefined],
          ['/models/fraud/', undefined],
          ['/search/?q=version%20%3D%201', 'Bearer not-a-known-token-at-all'],
        ] as const) {
          const refused = await closed.inject({ url, headers: authorization ? { authorization } : {} });
          expect([refused.statusCode, refused.headers['www-authenticate']], url).toEqual([401, 'Bearer']);
          expect(refused.headers['content-type']).toMatch(/^text\/html/);
          expect(refused.body).toContain('<code>--private-reads</code>');
          expect(refused.body).not.toContain('fraud');
        }
        const allowed = await closed.inject({ url: '/models/fraud/', headers: { authorization: `Bearer ${token}` } });
        expect([allowed.statusCode, allowed.body.includes('Card fraud v2')]).toEqual([200, true]);
        expect((await closed.inject({ url: '/assets/app.css' })).statusCode).toBe(200);
      } finally {
        await closed.close();
      }
    } finally {
      await app.close();
      await served.close();
      await gh.close();
    }
  });
});
