import { parse } from 'yaml';

/**
 * What a `<path>.dvc` file says about the data DVC tracks there (pure): the md5 DVC keeps it under
 * in its cache, and whether it is a folder (DVC's `.dir` listing). The cache layout is DVC 3's
 * (`.dvc/cache/files/md5/<2>/<30>`), with DVC 2's (`.dvc/cache/<2>/<30>`) as the fallback.
 */
export interface DvcOut {
  md5: string;
  directory: boolean;
}

const MD5 = /^[0-9a-f]{32}(\.dir)?$/;

/** The one output of a `.dvc` file; undefined when the file is not one DVC wrote for a single path. */
export function parseDvcFile(text: string | undefined): DvcOut | undefined {
  if (text === undefined) return undefined;
  let doc: unknown;
  try {
    doc = parse(text, { maxAliasCount: 0 });
  } catch {
    return undefined;
  }
  const outs = (doc as { outs?: unknown } | null)?.outs;
  if (!Array.isArray(outs) || outs.length !== 1) return undefined;
  const md5 = (outs[0] as { md5?: unknown } | null)?.md5;
  if (typeof md5 !== 'string' || !MD5.test(md5)) return undefined;
  return { md5: md5.replace(/\.dir$/, ''), directory: md5.endsWith('.dir') };
}

/** The places (relative to the repository) where DVC's cache may hold the object `md5` (`.dir` for a listing). */
export function dvcCachePaths(md5: string, directory = false): string[] {
  const tail = `${md5.slice(0, 2)}/${md5.slice(2)}${directory ? '.dir' : ''}`;
  return [`.dvc/cache/files/md5/${tail}`, `.dvc/cache/${tail}`];
}

/** A `.dir` listing: each file's path in the folder and its md5; undefined when it is not one. */
export function parseDvcDirListing(text: string): Array<{ relpath: string; md5: string }> | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(doc)) return undefined;
  const out: Array<{ relpath: string; md5: string }> = [];
  for (const e of doc as Array<{ relpath?: unknown; md5?: unknown }>) {
    if (typeof e?.relpath !== 'string' || typeof e.md5 !== 'string' || !/^[0-9a-f]{32}$/.test(e.md5)) return undefined;
    if (e.relpath.split('/').some((s) => s === '' || s === '.' || s === '..')) return undefined;
    out.push({ relpath: e.relpath, md5: e.md5 });
  }
  return out;
}
