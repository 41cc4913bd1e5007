import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { DemoFailure, expectExit, runProcess, type Narrator } from './narrator.js';

/** A free loopback port: listened on once and let go. */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/**
 * The demo's last step: the registry pages (SPEC v3 §11), written as the static site the template
 * workflow publishes, and answered live by `modelgate serve` (with the open pull requests from the
 * GitHub emulator). serve is stopped when the demo ends: the command to serve them again is printed.
 */
export async function demoPages(opts: { n: Narrator; cli: string; registry: string; out: string; env: NodeJS.ProcessEnv; model: string }): Promise<void> {
  const { n } = opts;
  n.heading('The registry pages: a static site, and served live by modelgate serve');
  const written = expectExit(
    await runProcess(process.execPath, [opts.cli, 'pages', opts.out], { cwd: opts.registry, env: opts.env }),
    0,
    `modelgate pages ${opts.out}`,
  );
  n.command(`modelgate pages ${opts.out}`, written.stdout + written.stderr);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/`;
  const serve = spawn(process.execPath, [opts.cli, '--quiet', 'serve', '--listen', `127.0.0.1:${port}`], {
    cwd: opts.registry,
    env: opts.env,
    stdio: 'ignore',
  });
  try {
    let ready = false;
    for (let i = 0; i < 300 && !ready && serve.exitCode === null; i++) {
      ready = await fetch(`${url}readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (!ready) await sleep(100);
    }
    if (!ready) throw new DemoFailure(`modelgate serve did not become ready at ${url}`);
    const page = await fetch(`${url}models/${opts.model}/`);
    const text = await page.text();
    if (page.status !== 200 || !text.includes('Stage and alias changes'))
      throw new DemoFailure(`GET ${url}models/${opts.model}/ answered ${page.status} without the model's timeline`);
    n.command(
      `modelgate serve --listen 127.0.0.1:${port}`,
      `GET ${url}models/${opts.model}/ → ${page.status}, X-Modelgate-Commit: ${page.headers.get('x-modelgate-commit')}`,
    );
  } finally {
    serve.kill('SIGTERM');
    if (serve.exitCode === null) await once(serve, 'exit');
  }
  n.say(`static site: ${opts.out}/index.html (open it in a browser, or publish the folder)`);
  n.say(
    `live pages: ${url} (served during the demo; serve them again with: npm run modelgate -- --registry ${opts.registry} serve --listen 127.0.0.1:${port})`,
  );
}
