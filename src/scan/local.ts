/**
 * `modelgate scan` and `register`'s scan before upload: the pickle scanner over files on disk. A
 * folder is scanned file by file, every file by its content whatever its name; names in the
 * result are paths inside the folder (or the file's own name), as the gate reports them.
 */
import { lstat, readdir } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import { openFileSource, scanArtifactFile } from './artifact.js';
import type { PickleFinding } from './pickle.js';

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
  const files = st.isDirectory() ? await walk(path) : [path];
  for (const file of files) {
    const name = st.isDirectory() ? relative(path, file).split(sep).join('/') : basename(path);
    const src = await openFileSource(file);
    try {
      out.findings.push(...(await scanArtifactFile(name, src, { format: st.isDirectory() ? undefined : opts.format, allowGlobals: opts.allowGlobals })));
    } finally {
      await src.close();
    }
    out.scanned.push(name);
  }
  return out;
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(p)));
    else if (entry.isFile()) out.push(p);
  }
  return out;
}
