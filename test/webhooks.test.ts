import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/main.js';
import { formatSyncSummary, syncAndPush } from '../src/deploy/apply.js';
import { GitRepo } from '../src/git/repo.js';
import { serveGitHttp, type GitHttpServer } from '../src/local/git-http-backend.js';
import { deliverEvents, pinEvents, pullRequestOf, signWebhook, webhookKey, type PinEvent } from '../src/notify/webhooks.js';
import { git, gitAsync, initRepo, registryConfig, setStage, tempDir, writeRegistry } from './helpers/pin-registry.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
  verified: boolean;
}

/** A receiver on loopback that verifies Standard Webhooks signatures the way a consumer would. */
async function receiver(respond: (n: number) => { status: number; headers?: Record<string, string> } = () => ({ status: 204 })) {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const id = String(req.headers['webhook-id']);
      const ts = String(req.headers['webhook-timestamp']);
      const expected = createHmac('sha256', Buffer.from(SECRET.slice(6), 'base64'))
        .update(`${id}.${ts}.${body}`)
        .digest();
      const given = String(req.headers['webhook-signature'] ?? '')
        .split(' ')
        .map((s) => Buffer.from(s.replace(/^v1,/, ''), 'base64'));
      const verified = given.some((g) => g.length === expected.length && timingSafeEqual(g, expected));
      received.push({ headers: req.headers, body, verified });
      const r = respond(received.length);
      res.writeHead(r.status, r.headers);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/modelgate`;
  return { url, received, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const event: PinEvent = pinEvents(
  [
    {
      model: 'fraud-detector',
      environment: 'production',
      stage: 'Production',
      path: 'deploy/production/fraud-detector.yaml',
      action: 'update',
      fromVersion: 1,
      toVersion: 2,
      sha256: 'ab'.repeat(32),
      artifactUri: 's3://b/x',
    },
  ],
  { commit: 'c'.repeat(40), repository: 'acme/model-registry', pullRequest: () => 12, now: new Date('2026-11-27T10:00:00Z') },
)[0]!;

const noWait = { sleep: async () => {}, baseDelayMs: 1 };

describe('Standard Webhooks signing', () => {
  it('reproduces the published test vector', () => {
    expect(signWebhook(SECRET, 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}')).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });

  it('decodes whsec_ secrets and uses other secrets as their bytes', () => {
    expect(webhookKey(SECRET)).toEqual(Buffer.from('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'base64'));
    expect(webhookKey('plain secret')).toEqual(Buffer.from('plain secret'));
  });

  it('finds the pull request in merge and squash commit messages', () => {
    expect(pullRequestOf('Merge pull request #42 from acme/promote\n\nbody')).toBe(42);
    expect(pullRequestOf('Promote fraud-detector v2 (#17)\n\n* detail (#3)')).toBe(17);
    expect(pullRequestOf('promote fraud-detector v2')).toBeUndefined();
  });
});

describe('deliverEvents', () => {
  it('posts a signed event that a receiver verifies', async () => {
    const r = await receiver();
    try {
      const [report] = await deliverEvents([{ url: r.url, secretEnv: 'HOOK_SECRET' }], [event], { env: { HOOK_SECRET: SECRET } });
      expect(report).toMatchObject({ ok: true, attempts: 1, status: 204 });
      expect(r.received).toHaveLength(1);
      const got = r.received[0]!;
      expect(got.verified).toBe(true);
      expect(got.headers['webhook-id']).toMatch(/^msg_[0-9a-f]{32}$/);
      expect(got.headers['content-type']).toBe('application/json');
      expect(JSON.parse(got.body)).toEqual({
        type: 'modelgate.pin.changed',
        timestamp: '2026-11-27T10:00:00.000Z',
        data: {
          model: 'fraud-detector',
          environment: 'production',
          stage: 'Production',
          previousVersion: 1,
          version: 2,
          sha256: 'ab'.repeat(32),
          artifactUri: 's3://b/x',
          commit: 'c'.repeat(40),
          repository: 'acme/model-registry',
          pullRequest: 12,
        },
      });
    } finally {
      await r.close();
    }
  });

  it('retries a 500 and keeps the message id, re-signing each attempt', async () => {
    const r = await receiver((n) => ({ status: n === 1 ? 500 : 200 }));
    try {
      const [report] = await deliverEvents([{ url: r.url, secretEnv: 'S' }], [event], { env: { S: SECRET }, ...noWait });
      expect(report).toMatchObject({ ok: true, attempts: 2, status: 200 });
      expect(r.received.map((x) => x.verified)).toEqual([true, true]);
      expect(r.received[0]!.headers['webhook-id']).toBe(r.received[1]!.headers['webhook-id']);
    } finally {
      await r.close();
    }
  });

  it('honours Retry-After on 429', async () => {
    const r = await receiver((n) => (n === 1 ? { status: 429, headers: { 'retry-after': '7' } } : { status: 200 }));
    const waits: number[] = [];
    try {
      const [report] = await deliverEvents([{ url: r.url }], [event], { sleep: async (ms) => void waits.push(ms) });
      expect(report).toMatchObject({ ok: true, attempts: 2 });
      expect(waits).toEqual([7000]);
    } finally {
      await r.close();
    }
  });

  it('reads Retry-After as an HTTP date too, and never waits longer than the cap', async () => {
    const now = new Date('2026-11-27T10:00:00Z');
    const replies = [
      { status: 503, headers: { 'retry-after': new Date(now.getTime() + 5000).toUTCString() } },
      { status: 429, headers: { 'retry-after': '86400' } },
      { status: 502 },
      { status: 200 },
    ];
    const r = await receiver((n) => replies[n - 1]!);
    const waits: number[] = [];
    try {
      const [report] = await deliverEvents([{ url: r.url }], [event], {
        now: () => now,
        maxDelayMs: 30_000,
        baseDelayMs: 500,
        sleep: async (ms) => void waits.push(ms),
      });
      expect(report).toMatchObject({ ok: true, attempts: 4 });
      expect(waits.slice(0, 2)).toEqual([5000, 30_000]);
      // No Retry-After: jittered exponential backoff, below base × 2^(attempt-1).
      expect(waits[2]).toBeGreaterThanOrEqual(0);
      expect(waits[2]).toBeLessThan(500 * 4);
    } finally {
      await r.close();
    }
  });

  it('gives up after the bounded attempts and reports without throwing; 4xx is not retried', async () => {
    const down = await receiver(() => ({ status: 503 }));
    const bad = await receiver(() => ({ status: 400 }));
    try {
      const reports = await deliverEvents([{ url: down.url }, { url: bad.url }], [event], { maxAttempts: 3, ...noWait });
      expect(reports).toEqual([
        expect.objectContaining({ ok: false, attempts: 3, status: 503, error: 'HTTP 503', target: expect.stringMatching(/^webhook 1 \(127\.0\.0\.1:\d+\)$/) }),
        expect.objectContaining({ ok: false, attempts: 1, status: 400, error: 'HTTP 400' }),
      ]);
      expect(down.received).toHaveLength(3);
      expect(bad.received).toHaveLength(1);
    } finally {
      await down.close();
      await bad.close();
    }
  });

  it('reports network errors without repeating the URL, and refuses to send unsigned when the secret is missing', async () => {
    const reports = await deliverEvents(
      [{ url: 'http://127.0.0.1:1/token-in-path/SECRET123' }, { url: 'http://127.0.0.1:1/x', secretEnv: 'MISSING_SECRET' }],
      [event],
      { env: {}, maxAttempts: 2, ...noWait },
    );
    expect(reports[0]).toMatchObject({ ok: false, attempts: 2, error: 'network error' });
    expect(JSON.stringify(reports)).not.toContain('SECRET123');
    expect(reports[1]).toMatchObject({ ok: false, attempts: 0, error: expect.stringContaining('MISSING_SECRET') });
  });

  it('sends Slack incoming-webhook messages for format: slack', async () => {
    const r = await receiver(() => ({ status: 200 }));
    try {
      const [report] = await deliverEvents([{ url: r.url, format: 'slack' }], [event], {});
      expect(report!.ok).toBe(true);
      const body = JSON.parse(r.received[0]!.body);
      expect(body.text).toContain('*fraud-detector* in *production*: v1 → v2');
      expect(body.text).toContain('PR #12');
      expect(body.blocks[0]).toMatchObject({ type: 'section', text: { type: 'mrkdwn' } });
      expect(r.received[0]!.headers['webhook-signature']).toBeUndefined();
    } finally {
      await r.close();
    }
  });
});

describe('webhooks after a sync push', () => {
  let server: GitHttpServer;
  let remoteRoot: string;
  beforeAll(async () => {
    remoteRoot = tempDir('hook-remotes');
    server = await serveGitHttp(remoteRoot);
  });
  afterAll(() => server.close());

  it('fires one event per change with the commit and pull request; a failing hook is reported and the sync stands', async () => {
    const r = await receiver();
    const down = await receiver(() => ({ status: 500 }));
    try {
      const seed = writeRegistry(
        tempDir('hook-seed'),
        { 'fraud-detector': { deploy: {}, versions: [{ stage: 'Production' }, { stage: 'Staging' }] } },
        registryConfig({
          github: { repository: 'acme/model-registry' },
          webhooks: [{ url: r.url, secretEnv: 'MG_HOOK' }, { url: down.url }],
        }),
      );
      expect(await runCli(['--registry', seed, '--quiet', 'sync'], { cwd: seed, env: {}, stdout: () => {}, stderr: () => {}, tty: false })).toBe(0);
      initRepo(seed);
      setStage(seed, 'fraud-detector', 2, 'Production');
      git(seed, 'commit', '-qam', 'Merge pull request #9 from acme/promote-fraud-v2');
      git(remoteRoot, 'clone', '--quiet', '--bare', seed, 'hooks.git');
      const work = join(tempDir('hook-clone'), 'r');
      await gitAsync(join(work, '..'), 'clone', '--quiet', `${server.url}/hooks.git`, 'r');

      const result = await syncAndPush({ repo: new GitRepo(work), notify: { env: { MG_HOOK: SECRET }, maxAttempts: 2, ...noWait } });
      expect(result.status).toBe('pushed');
      expect(r.received).toHaveLength(1);
      expect(r.received[0]!.verified).toBe(true);
      expect(JSON.parse(r.received[0]!.body).data).toMatchObject({
        model: 'fraud-detector',
        environment: 'production',
        previousVersion: 1,
        version: 2,
        commit: result.commit,
        pullRequest: 9,
      });
      expect(result.deliveries).toEqual([expect.objectContaining({ ok: true }), expect.objectContaining({ ok: false, attempts: 2, error: 'HTTP 500' })]);
      const summary = formatSyncSummary(result);
      expect(summary).toContain('| fraud-detector | production | v1 | v2 |');
      expect(summary).toMatch(
        /Webhooks: 1\/2 delivered\.\n- :warning: webhook 2 \(127\.0\.0\.1:\d+\): fraud-detector production not delivered after 2 attempt\(s\): HTTP 500$/m,
      );
      const head = (await gitAsync(work, 'ls-remote', 'origin', 'refs/heads/main')).split('\t')[0];
      expect(head).toBe(result.commit);
    } finally {
      await r.close();
      await down.close();
    }
  });
});
