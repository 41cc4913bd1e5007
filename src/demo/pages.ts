import { DemoFailure, expectExit, runProcess, type Narrator } from './narrator.js';

/**
 * The registry pages (SPEC v3 §11) as the static site the template workflow publishes: written
 * by `modelgate pages <out>` from the demo's registry.
 */
export async function writeStaticSite(opts: { n: Narrator; cli: string; registry: string; out: string; env: NodeJS.ProcessEnv }): Promise<void> {
  const { n } = opts;
  n.heading('The registry pages as a static site (what the template workflow publishes to GitHub Pages)');
  const written = expectExit(
    await runProcess(process.execPath, [opts.cli, 'pages', opts.out], { cwd: opts.registry, env: opts.env }),
    0,
    `modelgate pages ${opts.out}`,
  );
  n.command(`modelgate pages ${opts.out}`, written.stdout + written.stderr);
  n.say(`static site: ${opts.out}/index.html (open it in a browser, or publish the folder)`);
}

/** The same pages answered live by a running `modelgate serve` at `url`: a model's page with its timeline. */
export async function showLivePages(n: Narrator, url: string, model: string): Promise<void> {
  const page = await fetch(`${url}/models/${model}/`);
  const text = await page.text();
  if (page.status !== 200 || !text.includes('Stage and alias changes'))
    throw new DemoFailure(`GET ${url}/models/${model}/ answered ${page.status} without the model's timeline`);
  n.command(`curl ${url}/models/${model}/`, `${page.status}, X-Modelgate-Commit: ${page.headers.get('x-modelgate-commit')}; live pages at ${url}/`);
}
