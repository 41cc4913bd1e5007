import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The scripts and styles `npm run build` bundles for the pages (dist/pages-assets: uPlot, the
 * `--where` parser, the page script): `modelgate pages` copies them, `serve` answers them at `/assets/`.
 */
export function pagesAssetsDir(from: string = fileURLToPath(import.meta.url)): string | undefined {
  for (let dir = dirname(from), i = 0; i < 5; dir = dirname(dir), i++) {
    for (const candidate of [join(dir, 'pages-assets'), join(dir, 'dist', 'pages-assets')]) {
      if (existsSync(join(candidate, 'app.js'))) return candidate;
    }
    if (dirname(dir) === dir) break;
  }
  return undefined;
}
