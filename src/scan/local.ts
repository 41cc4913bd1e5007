/**
 * `modelgate scan` and `register`'s scan before upload: the pickle scanner over files on disk. A
 * folder is scanned file by file, every file by its content whatever its name, and every file
 * an MLflow `MLmodel` names as that flavor loads it; names in the result are paths inside the
 * folder (or the file's own name), as the gate reports them.
 */
import { lstat, readdir, readFile } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import { openFileSource, scanArtifactFile } from './artifact.js';
import { planMLmodels } from './mlmodel.js';
import type { PickleFinding } from './pickle.js';

const CONCURRENCY = 8;

export interface LocalScanOptions {
  /** The declared format of a single-file artifact, checked against its bytes. */
  format?: string;
  /** Globals allowed besides the default (a policy's `scan.allowGlobals`, `--allow`). */
  allowGlobals?: readonly string[];
}

export interface LocalScan {
  /** Every file read, by its name in the findings. */
  scanned: string[];
  findings: PickleFinding[];
}

/** Scans a file or every file under a folder; symbolic links are not followed. */
export async function scanLocalPath(path: string, opts: LocalScanOptions = {}): Promise<LocalScan> {
  const out: LocalScan = { scanned: [], findings: [] };
  const st = await lstat(path);
  const links: string[] = [];
  const files = st.isDirectory() ? await walk(path, links) : [path];
  const inFolder = (file: string) => relative(path, file).split(sep).join('/');
  const names = files.map((file) => (st.isDirectory() ? inFolder(file) : basename(path)));
  const sizes = new Map<string, number>();
  // only a folder with an MLflow model needs the sizes (most folders have none)
  const hasMLmodel = st.isDirectory() && names.some((n) => n === 'MLmodel' || n.endsWith('/MLmodel'));
  if (hasMLmodel) for (const [i, file] of files.entries()) sizes.set(names[i]!, (await lstat(file)).size);
  const mlflow = hasMLmodel
    ? await planMLmodels({ files: sizes, links: new Set(links.map(inFolder)), read: (name) => readFile(join(path, name)) }, opts.allowGlobals ?? [])
    : undefined;
  const results: PickleFinding[][] = [];
  let next = 0;
  // a few files at a time: a folder of many small files is bound by opening them
  const worker = async () => {
    for (let i = next++; i < files.length; i = next++) {
      const src = await openFileSource(files[i]!);
      try {
        const loadedAs = mlflow?.loads.get(names[i]!);
        results[i] = await scanArtifactFile(names[i]!, src, {
          format: st.isDirectory() ? undefined : opts.format,
          allowGlobals: opts.allowGlobals,
          ...(loadedAs ? { loadedAs } : {}),
        });
      } finally {
        await src.close();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, files.length) }, worker));
  out.scanned.push(...names);
  out.findings.push(...(mlflow?.findings ?? []));
  for (const r of results) out.findings.push(...r);
  return out;
}

/** The regular files under `dir`; symbolic links are collected into `links`, not followed. */
async function walk(dir: string, links: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(p, links)));
    else if (entry.isFile()) out.push(p);
    else if (entry.isSymbolicLink()) links.push(p);
  }
  return out;
}
