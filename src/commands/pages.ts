import { copyFile, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { emit, parseCommand, type Command } from '../cli/context.js';
import { ExitCode, ModelgateError } from '../errors.js';
import { pagesAssetsDir } from '../pages/assets.js';
import { searchEntry, searchShard, type SearchIndex } from '../pages/search-index.js';
import { openPagesReader, readModelView, versionView, type ModelSummary } from '../pages/read-model.js';
import { PAGE_SIZE, renderCompare, renderIndex, renderModel, renderSearch, renderVersion, rootOf, sitePaths, type PageContext } from '../pages/render.js';
import { isRegistryUrl, openReadRegistry, openRegistry, RegistrySnapshot } from '../registry/snapshot.js';

/**
 * `modelgate pages <out-dir>`: the registry pages as a static site (SPEC v3 §11). Model by model:
 * one model's versions are read, its pages written, and only its summary kept, so memory stays
 * bounded by the largest model, whatever the number of models. Search runs in the browser over
 * one file of versions per model (`search/models/<model>.json`), which a small
 * `search/index.json` summarizes so that a search fetches only the models that may match.
 */
export const run: Command = async (ctx) => {
  const { positionals, misuse } = parseCommand('pages', ctx.argv);
  if (positionals.length !== 1) throw misuse('expected the output folder');
  const out = resolve(ctx.cwd, positionals[0]!);
  const assets = pagesAssetsDir();
  if (!assets) throw new ModelgateError('E_PAGES_ASSETS', 'the pages assets (dist/pages-assets) are missing: run npm run build', ExitCode.content);

  const local = isRegistryUrl(ctx.registry) ? undefined : openRegistry(ctx);
  const snapshot = local?.snapshot ?? (await openReadRegistry(ctx)).snapshot;
  const reader = await openPagesReader(snapshot, local?.repo, ctx.env);
  const commit = local ? await local.repo.resolve('HEAD') : undefined;
  const generatedFrom = `${reader.config.github?.repository ?? 'registry'}${commit ? ` at ${commit.slice(0, 12)}` : ''}`;
  const repository = reader.config.github?.repository;
  const context = (path: string): PageContext => ({ root: rootOf(path), generatedFrom });
  const page = async (path: string, text: string) => {
    await mkdir(join(out, path), { recursive: true });
    await writeFile(join(out, path, 'index.html'), text);
  };
  // Files are written a few at a time: rendering (CPU) overlaps the writes, memory stays bounded.
  const writing = new Set<Promise<void>>();
  const queue = async (path: string, text: string) => {
    const p = page(path, text).finally(() => writing.delete(p));
    writing.add(p);
    if (writing.size >= 16) await Promise.race(writing);
  };

  await mkdir(join(out, 'assets'), { recursive: true });
  for (const f of await readdir(assets)) await copyFile(join(assets, f), join(out, 'assets', f));
  // GitHub Pages would run Jekyll over the folder otherwise.
  await writeFile(join(out, '.nojekyll'), '');

  await mkdir(join(out, 'search', 'models'), { recursive: true });
  const index: SearchIndex = { shards: [] };
  const summaries: ModelSummary[] = [];
  let versions = 0;
  let pages = 0;
  try {
    for (const name of await snapshot.modelNames()) {
      // A snapshot per model: its parse cache is dropped with the model, so the walk stays bounded.
      const view = await readModelView({ ...reader, snapshot: new RegistrySnapshot(snapshot.source) }, name);
      const pageCount = Math.max(1, Math.ceil(view.versions.length / PAGE_SIZE));
      for (let p = 1; p <= pageCount; p++) await queue(sitePaths.model(name, p), renderModel(view, p, context(sitePaths.model(name, p)), repository));
      await queue(sitePaths.compare(name), renderCompare(view, context(sitePaths.compare(name))));
      for (const v of view.versions) {
        await queue(sitePaths.version(name, v.version), renderVersion(versionView(view, v), context(sitePaths.version(name, v.version)), repository));
      }
      const shard = searchShard(name, view.versions);
      await writeFile(join(out, 'search', shard.file), JSON.stringify(view.versions.map(searchEntry)));
      index.shards.push(shard);
      summaries.push(view.summary);
      versions += view.versions.length;
      pages += pageCount + 1 + view.versions.length;
    }
    await Promise.all(writing);
  } finally {
    await Promise.allSettled(writing);
    reader.store?.close();
  }
  await writeFile(join(out, 'search', 'index.json'), JSON.stringify(index));
  await page(sitePaths.index(), renderIndex(summaries, context(sitePaths.index())));
  await page(sitePaths.search(), renderSearch(context(sitePaths.search())));
  pages += 2;
  emit(ctx, { out, models: summaries.length, versions, pages }, () => `wrote ${pages} pages (${summaries.length} models, ${versions} versions) to ${out}`);
  return 0;
};
