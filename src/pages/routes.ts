/**
 * The registry pages by URL, for `serve` (SPEC v3 §11: `serve` answers `/` with the same pages
 * `modelgate pages` writes). Paths are the static site's (`/models/fraud/versions/3/`); on a
 * server, search and compare are answered here from the query instead of by the page's script.
 */
import { matchWhere, parseWhere } from '../query/where.js';
import { isModelName } from '../registry/layout.js';
import { RegistrySnapshot } from '../registry/snapshot.js';
import type { ModelVersion } from '../manifest/types.js';
import { readModelView, versionView, type ModelSummary, type PagesReader } from './read-model.js';
import { PAGE_SIZE, renderCompare, renderIndex, renderModel, renderSearch, renderVersion, rootOf, type PageContext } from './render.js';

/**
 * The page at `url` (path and query), or undefined when no page is there (a 404 for the caller).
 * `generatedFrom` names the commit served, for the footer. A malformed `q` throws E_WHERE_SYNTAX.
 */
export async function renderPagePath(reader: PagesReader, url: URL, generatedFrom: string): Promise<string | undefined> {
  const path = url.pathname.endsWith('/') ? url.pathname : `${url.pathname}/`;
  const ctx: PageContext = { root: rootOf(path), generatedFrom };
  const repository = reader.config.github?.repository;
  if (path === '/') {
    const summaries: ModelSummary[] = [];
    for (const name of await new RegistrySnapshot(reader.source).modelNames()) summaries.push((await readModelView(reader, name)).summary);
    return renderIndex(summaries, ctx);
  }
  if (path === '/search/') {
    const q = url.searchParams.get('q') ?? '';
    if (!q.trim()) return renderSearch(ctx, q);
    const expr = parseWhere(q);
    const found: ModelVersion[] = [];
    for (const name of await new RegistrySnapshot(reader.source).modelNames()) {
      // A snapshot per model, as readModelView: the parse cache goes with the model.
      for (const v of await new RegistrySnapshot(reader.source).versions(name)) if (matchWhere(expr, v)) found.push(v);
    }
    return renderSearch(ctx, q, found);
  }
  const m = /^\/models\/([^/]+)\/(?:(?:page\/([1-9][0-9]{0,5})\/)|(?:versions\/([1-9][0-9]{0,8})\/)|(compare\/))?$/.exec(path);
  if (!m || !isModelName(m[1]!)) return undefined;
  if (!(await new RegistrySnapshot(reader.source).modelNames()).includes(m[1]!)) return undefined;
  const view = await readModelView(reader, m[1]!);
  if (m[3] !== undefined) {
    const v = view.versions.find((x) => x.version === Number(m[3]));
    return v ? renderVersion(versionView(view, v), ctx, repository) : undefined;
  }
  if (m[4] !== undefined) {
    const selected = url.searchParams.getAll('v').map(Number).filter(Number.isSafeInteger);
    return renderCompare(view, ctx, selected.length ? selected : undefined);
  }
  const page = m[2] === undefined ? 1 : Number(m[2]);
  if (page > Math.max(1, Math.ceil(view.versions.length / PAGE_SIZE))) return undefined;
  return renderModel(view, page, ctx, repository);
}
