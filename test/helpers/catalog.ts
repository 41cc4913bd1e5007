import { statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { cacheKey, sealer } from '../../src/registry/cache-file.js';

/**
 * Writes `text` as a catalog (`.git/modelgate/versions.tsv`) with its seal, and the stamp that
 * says it was checked, in the formats src/registry/catalog.ts writes, under the key beside it
 * (made if there is none): a catalog made by hand by someone who can read `.git/modelgate/`, which
 * modelgate believes as its own.
 */
export function sealAndStampCatalog(file: string, text: string): void {
  const key = cacheKey(dirname(file))!;
  writeFileSync(file, `${text}end ${sealer(key).update(text).digest('hex')}\n`);
  const st = statSync(file, { bigint: true });
  const stated = `modelgate-version-cache-checked 2 ${st.dev} ${st.ino} ${st.size} ${st.mtimeNs} ${st.ctimeNs}`;
  writeFileSync(`${file}.checked`, `${stated} ${sealer(key).update(stated).digest('hex')}\n`);
}
