/** modelgate's library API: the pure core and the adapters the CLI and the Action are built from. */
export * from './errors.js';
export * from './manifest/types.js';
export * from './manifest/problem.js';
export { loadManifest, type DocumentKind, type Loaded } from './manifest/load.js';
export * from './registry/layout.js';
export * from './registry/source.js';
export { GitRepo } from './git/repo.js';
export { LOAD_LIMITS, loadManifestWithPositions, locateField } from './manifest/load.js';
export { schemas, validators } from './manifest/schemas.js';
export { checkRegistry, type RegistryDocuments, type VersionFacts } from './manifest/semantic.js';
export { validateRegistry, type RegistryValidation, type ValidateOptions } from './manifest/validate-registry.js';
export { scanLocalPath, type LocalScan, type LocalScanOptions } from './scan/local.js';
export { scanArtifactFile, bufferSource, openFileSource, type ByteSource, type ArtifactScanOptions } from './scan/artifact.js';
export { scanPickleBytes, PickleScanner, type PickleFinding, type PickleScanOptions } from './scan/pickle.js';
export { DEFAULT_ALLOWED_GLOBALS } from './scan/allowlist.js';
