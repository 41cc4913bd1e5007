import { usageError } from '../errors.js';
import { hashFile } from '../store/digest.js';

export interface DatasetSpec {
  id: string;
  uri?: string;
  sha256?: string;
  /** A local copy to hash; not recorded. */
  path?: string;
}

/** `--dataset id=txn-q3,uri=s3://data/txn.parquet[,path=./txn.parquet][,sha256=<hex>]`. */
export function parseDatasetSpec(text: string): DatasetSpec {
  const spec: Record<string, string> = {};
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    const k = part.slice(0, eq).trim();
    if (eq <= 0 || !['id', 'uri', 'path', 'sha256'].includes(k) || k in spec) {
      throw usageError(`--dataset ${JSON.stringify(text)}: expected id=…,uri=…[,path=local-file][,sha256=hex]`);
    }
    spec[k] = part.slice(eq + 1).trim();
  }
  if (!spec.id) throw usageError(`--dataset ${JSON.stringify(text)}: id=… is required`);
  if (spec.sha256 !== undefined && !/^[0-9a-f]{64}$/.test(spec.sha256)) throw usageError(`--dataset ${spec.id}: sha256 must be 64 lowercase hex digits`);
  if (spec.sha256 && spec.path) throw usageError(`--dataset ${spec.id}: give sha256=… or path=…, not both`);
  return spec as unknown as DatasetSpec;
}

/** The manifest's `lineage.data` entry, hashing the local copy when one was named. */
export async function resolveDataset(spec: DatasetSpec, resolvePath: (p: string) => string): Promise<{ id: string; uri?: string; sha256?: string }> {
  let sha256 = spec.sha256;
  if (spec.path) {
    try {
      sha256 = (await hashFile(resolvePath(spec.path))).sha256;
    } catch {
      throw usageError(`--dataset ${spec.id}: cannot read ${spec.path}`);
    }
  }
  return { id: spec.id, ...(spec.uri ? { uri: spec.uri } : {}), ...(sha256 ? { sha256 } : {}) };
}
