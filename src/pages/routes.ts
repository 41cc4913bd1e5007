/**
 * The registry pages by URL, for `serve` (SPEC v3 §11: `serve` answers `/` with the same pages
 * `modelgate pages` writes). Paths are the static site's (`/models/fraud/versions/3/`); on a
 * server, search and compare are answered here from the query instead of by the page's script.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ModelgateError } from '../errors.js';
import { matchWhere, parseWhere, type Expr } from '../query/where.js';
import { isModelName } from '../registry/layout.js';
import type { ModelVersion } from '../manifest/types.js';
import { bearerIdentity, type TokenTable } from '../serve/access.js';
import type { ServedCommit, ServedRegistry } from '../serve/served-registry.js';
import { pagesAssetsDir } from './assets.js';
import { searchEntry, searchIndexed, searchParts, type SearchPart } from './search-index.js';
import { promotionsOf, readOpenPromotions, type OpenPromotions } from './open-pull-requests.js';
import { pagesReaderAt, readModelView, versionView, type ModelSummary, type ModelView, type PagesReader } from './read-model.js';
import {
  PAGE_SIZE,
  renderCompare,
  renderIndex,
  renderModel,
  renderNotFound,
  renderSearch,
  renderTokenNeeded,
  renderVersion,
  rootOf,
  type PageContext,
} from './render.js';

/** A value built for the last commit asked and kept until another commit is asked; a failed build is not kept. */
class LastCommit<T> {
  private held?: { commit: string; value: Promise<T> };

  get(commit: string, build: () => Promise<T>): Promise<T> {
    if (this.held?.commit !== commit) {
      const held = { commit, value: build() };
      held.value.catch(() => {
        if (this.held === held) this.held = undefined;
      });
      this.held = held;
    }
    return this.held.value;
  }
}

/**
 * The model views of one commit, the last few read: a version page of a model read a moment ago
 * renders without reading its history and decision records again. A view holds only what one
 * commit says, so the commit is the key.
 */
export class ModelViewCache {
  private readonly views = new Map<string, Promise<ModelView>>();
  private readonly index = new LastCommit<ModelSummary[]>();
  private readonly searchIndex = new LastCommit<SearchPart[]>();

  /** Every model's summary at `commit` (the models page), kept for the last commit asked. */
  summaries(reader: PagesReader, commit: string): Promise<ModelSummary[]> {
    return this.index.get(commit, () => readSummaries(reader));
  }

  /**
   * The search index of `commit`, built when a search first asks for it and kept for the last
   * commit searched: every version once, as text (search-index.ts), so a search parses only the
   * parts whose summary may match instead of reading every manifest again.
   */
  search(reader: PagesReader, commit: string): Promise<SearchPart[]> {
    return this.searchIndex.get(commit, () => buildSearchIndex(reader));
  }

  constructor(private readonly size = 8) {}

  get(reader: PagesReader, commit: string, model: string): Promise<ModelView> {
    const key = `${commit}\0${model}`;
    let view = this.views.get(key);
    if (view) {
      this.views.delete(key);
    } else {
      view = readModelView(reader, model);
      view.catch(() => this.views.delete(key));
    }
    this.views.set(key, view);
    for (const old of this.views.keys()) {
      if (this.views.size <= this.size) break;
      this.views.delete(old);
    }
    return view;
  }
}

async function readSummaries(reader: PagesReader): Promise<ModelSummary[]> {
  const summaries: ModelSummary[] = [];
  for (const name of await reader.snapshot.modelNames()) summaries.push((await readModelView(reader, name)).summary);
  return summaries;
}

async function buildSearchIndex(reader: PagesReader): Promise<SearchPart[]> {
  const parts: SearchPart[] = [];
  for (const name of await reader.snapshot.modelNames()) for (const part of searchParts(name, await reader.snapshot.versions(name))) parts.push(part);
  return parts;
}

/** The versions matching `expr`, every manifest read: a search without a view cache (one page rendered once). */
async function scanSearch(reader: PagesReader, expr: Expr): Promise<ModelVersion[]> {
  const found: ModelVersion[] = [];
  for (const name of await reader.snapshot.modelNames()) {
    // Matched as the index holds a version (no file list), so both answer the same as the static site's search.
    for (const v of await reader.snapshot.versions(name)) {
      const entry = searchEntry(v);
      if (matchWhere(expr, entry)) found.push(entry);
    }
  }
  return found;
}

/** Where a page's data comes from beyond the reader: the open promotions (serve), the commit and a view cache. */
export interface PageSources {
  open?: OpenPromotions;
  commit?: string;
  views?: ModelViewCache;
}

/**
 * The page at `url` (path and query), or undefined when no page is there (a 404 for the caller).
 * `generatedFrom` names the commit served, for the footer. A malformed `q` throws E_WHERE_SYNTAX.
 */
export async function renderPagePath(reader: PagesReader, url: URL, generatedFrom: string, sources: PageSources = {}): Promise<string | undefined> {
  const path = url.pathname.endsWith('/') ? url.pathname : `${url.pathname}/`;
  const ctx: PageContext = { root: rootOf(path), generatedFrom };
  const repository = reader.config.github?.repository;
  const view = (name: string) => (sources.views && sources.commit ? sources.views.get(reader, sources.commit, name) : readModelView(reader, name));
  if (path === '/') {
    const summaries = sources.views && sources.commit ? sources.views.summaries(reader, sources.commit) : readSummaries(reader);
    return renderIndex(await summaries, ctx, sources.open);
  }
  if (path === '/search/') {
    const q = url.searchParams.get('q') ?? '';
    if (!q.trim()) return renderSearch(ctx, q);
    const expr = parseWhere(q);
    const found = sources.views && sources.commit ? searchIndexed(await sources.views.search(reader, sources.commit), expr) : await scanSearch(reader, expr);
    return renderSearch(ctx, q, found);
  }
  const m = /^\/models\/([^/]+)\/(?:(?:page\/([1-9][0-9]{0,5})\/)|(?:versions\/([1-9][0-9]{0,8})\/)|(compare\/))?$/.exec(path);
  if (!m || !isModelName(m[1]!)) return undefined;
  if (!(await reader.snapshot.modelNames()).includes(m[1]!)) return undefined;
  const model = await view(m[1]!);
  if (m[3] !== undefined) {
    const v = model.versions.find((x) => x.version === Number(m[3]));
    return v ? renderVersion(versionView(model, v), ctx, repository) : undefined;
  }
  if (m[4] !== undefined) {
    const selected = url.searchParams.getAll('v').map(Number).filter(Number.isSafeInteger);
    return renderCompare(model, ctx, selected.length ? selected : undefined);
  }
  const page = m[2] === undefined ? 1 : Number(m[2]);
  if (page > Math.max(1, Math.ceil(model.versions.length / PAGE_SIZE))) return undefined;
  return renderModel(model, page, ctx, repository, sources.open && promotionsOf(sources.open, m[1]!));
}

/** How long a list of open promotions is shown before GitHub (or the remote) is asked again. */
const OPEN_PROMOTIONS_TTL_MS = 30_000;

/** Rendered pages kept, the most recently rendered (a version page is some 10–50 KB). */
const RENDERED_PAGES = 256;

const ASSET_TYPES: Record<string, string> = { 'app.js': 'text/javascript; charset=utf-8', 'app.css': 'text/css; charset=utf-8' };

/**
 * `serve`'s pages: `/`, `/search/`, `/models/…` rendered from the commit served (named in
 * `X-Modelgate-Commit`, as the API's answers), the bundled scripts and styles at `/assets/`, and
 * the open promotion pull requests on the models page and each model's page. With `privateReads`
 * (`serve --private-reads`, the tokens given) a page needs a valid bearer token as the API does;
 * without one it is a 401 page saying so (the assets hold no registry data and stay open).
 */
export function registerPagesRoutes(app: FastifyInstance, registry: ServedRegistry, privateReads?: TokenTable): void {
  const views = new ModelViewCache();
  // A commit's reader reads through the snapshot serve holds for it (the API's documents, version
  // numbers and tree listings), made once per served commit and dropped with it.
  const readers = new WeakMap<ServedCommit, Promise<PagesReader>>();
  const readerOf = (served: ServedCommit) => {
    let reader = readers.get(served);
    if (!reader) {
      reader = pagesReaderAt(served.snapshot, { repo: registry.repo, rev: served.commit, store: served.store });
      reader.catch(() => readers.delete(served));
      readers.set(served, reader);
    }
    return reader;
  };
  let open: { at: number; list: Promise<OpenPromotions> } | undefined;
  const openPromotions = (repository: string | undefined) => {
    if (!open || Date.now() - open.at > OPEN_PROMOTIONS_TTL_MS) {
      open = { at: Date.now(), list: readOpenPromotions({ repo: registry.repo, remote: 'origin', repository, env: registry.env }) };
    }
    return open.list;
  };
  const rendered = new Map<string, Buffer>();
  const remember = (key: string, text: string) => {
    rendered.set(key, Buffer.from(text));
    for (const old of rendered.keys()) {
      if (rendered.size <= RENDERED_PAGES) break;
      rendered.delete(old);
    }
  };
  const assets = new Map<string, Promise<Buffer | undefined>>();
  const dir = pagesAssetsDir();

  const page = async (request: FastifyRequest, reply: FastifyReply) => {
    const url = new URL(request.url, 'http://serve.local');
    // Links are relative to the folder a page is in: a page is answered at its folder's URL only.
    if (!url.pathname.endsWith('/')) return reply.redirect(`${url.pathname}/${url.search}`, 308);
    const header = request.headers.authorization;
    if (privateReads && (header === undefined || bearerIdentity(header, privateReads) === undefined)) {
      const ctx = { root: rootOf(url.pathname), generatedFrom: 'modelgate serve --private-reads' };
      return reply.code(401).header('www-authenticate', 'Bearer').type('text/html; charset=utf-8').send(renderTokenNeeded(ctx));
    }
    const served = await registry.current();
    reply.header('x-modelgate-commit', served.commit);
    const listsOpen = url.pathname === '/' || /^\/models\/[^/]+\/(page\/[^/]+\/)?$/.test(url.pathname);
    // A page without the open promotions says only what its commit says: answered again from memory.
    const key = listsOpen ? undefined : `${served.commit}\0${url.pathname}${url.search}`;
    const known = key === undefined ? undefined : rendered.get(key);
    if (known !== undefined) return reply.type('text/html; charset=utf-8').send(known);
    const reader = await readerOf(served);
    const repository = served.config.github?.repository;
    const generatedFrom = `${repository ?? 'registry'} at ${served.commit.slice(0, 12)}`;
    const sources: PageSources = { commit: served.commit, views, ...(listsOpen ? { open: await openPromotions(repository) } : {}) };
    reply.type('text/html; charset=utf-8');
    try {
      const text = await renderPagePath(reader, url, generatedFrom, sources);
      if (text !== undefined) {
        if (key !== undefined) remember(key, text);
        return reply.send(text);
      }
    } catch (e) {
      if (!(e instanceof ModelgateError && e.code === 'E_WHERE_SYNTAX')) throw e;
      const q = url.searchParams.get('q') ?? '';
      return reply.code(400).send(renderSearch({ root: rootOf(url.pathname), generatedFrom }, q, undefined, e.message));
    }
    return reply.code(404).send(renderNotFound({ root: rootOf(url.pathname), generatedFrom }, url.pathname));
  };
  app.get('/', page);
  app.get('/search', page);
  app.get('/search/', page);
  app.get('/models/*', page);
  app.get<{ Params: { file: string } }>('/assets/:file', async (request, reply) => {
    const file = request.params.file;
    const type = ASSET_TYPES[file];
    if (!type || !dir) return reply.code(404).type('text/plain').send('not found');
    if (!assets.has(file))
      assets.set(
        file,
        readFile(join(dir, file)).catch(() => undefined),
      );
    const body = await assets.get(file)!;
    if (!body) return reply.code(404).type('text/plain').send('not found');
    return reply.type(type).header('cache-control', 'no-cache').send(body);
  });
}
