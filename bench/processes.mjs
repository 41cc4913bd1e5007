// The child processes the benches start (serve, a real `mlflow server`, the CLI): a free loopback
// port, a command that must succeed, a long-running child stopped by its process group, and the
// wait until it answers. Shared by serve.bench.mjs, mlflow-import.bench.mjs and pages.bench.mjs.
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A loopback port nothing listens on: listened on once and let go. */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolvePort(port));
    });
  });
}

/** Runs a command to its end; its stdout, or an error with the end of its stderr. */
export function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 30, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${String(r.stderr).slice(-1000)}`);
  return r.stdout;
}

/** A long-running child whose output is kept (for the error when it dies) and which is stopped by its own process group. */
export function daemon(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...opts });
  let log = '';
  child.stdout.on('data', (d) => (log = (log + d).slice(-4000)));
  child.stderr.on('data', (d) => (log = (log + d).slice(-4000)));
  return {
    child,
    log: () => log,
    stop: async () => {
      if (child.exitCode !== null) return;
      const done = new Promise((r) => child.once('exit', r));
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        return;
      }
      await Promise.race([done, sleep(15_000)]);
      if (child.exitCode === null) process.kill(-child.pid, 'SIGKILL');
    },
  };
}

/** Waits until `url` answers 200 (the daemon `proc` dying first is an error with its output). */
export async function waitFor(url, what, proc, seconds = 600) {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null) throw new Error(`${what} exited ${proc.child.exitCode}: ${proc.log()}`);
    try {
      const r = await fetch(url);
      if (r.ok) return r;
    } catch {
      // not listening yet
    }
    await sleep(250);
  }
  throw new Error(`${what} was not ready within ${seconds} s: ${proc.log()}`);
}

/**
 * A real `mlflow server` from the project's .venv on a free loopback port (SQLite backend at `db`,
 * artifact proxy into `artifacts`), answering: its uvicorn workers start (and on a loaded machine
 * restart) one by one, so it counts as up once `steady` requests of `probe` (a path) in a row have
 * been answered. Returns the daemon and its URL.
 */
export async function startMlflowServer({ project, db, artifacts, cwd, probe = '/health', steady = 5 }) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = daemon(
    join(project, '.venv/bin/mlflow'),
    ['server', '--backend-store-uri', `sqlite:///${db}`, '--artifacts-destination', artifacts, '--host', '127.0.0.1', '--port', String(port)],
    { cwd },
  );
  try {
    await waitFor(`${url}/health`, 'mlflow server', proc);
    for (let ok = 0, tries = 0; ok < steady; tries++) {
      if (proc.child.exitCode !== null) throw new Error(`mlflow server exited ${proc.child.exitCode}: ${proc.log()}`);
      if (tries > 2000) throw new Error(`mlflow server kept failing requests: ${proc.log()}`);
      ok = (await fetch(url + probe).then(
        (r) => r.ok,
        () => false,
      ))
        ? ok + 1
        : 0;
      await sleep(ok ? 100 : 500);
    }
  } catch (e) {
    await proc.stop();
    throw e;
  }
  return { ...proc, url };
}
