import { createHash } from 'node:crypto';
import { statSync, writeFileSync } from 'node:fs';

/**
 * Writes `text` as a catalog (`.git/modelgate/versions.tsv`) with its seal, and the stamp that
 * says it was checked, in the formats src/registry/catalog.ts writes: a catalog made by hand
 * that modelgate believes as its own.
 */
export function sealAndStampCatalog(file: string, text: string): void {
  writeFileSync(file, `${text}end ${createHash('sha256').update(text).digest('hex')}\n`);
  const st = statSync(file, { bigint: true });
  writeFileSync(`${file}.checked`, `modelgate-version-cache-checked 1 ${st.dev} ${st.ino} ${st.size} ${st.mtimeNs} ${st.ctimeNs}\n`);
}
