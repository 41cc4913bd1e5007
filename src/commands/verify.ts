import { emit, parseCommand, type Command } from '../cli/context.js';
import { ExitCode, ModelgateError } from '../errors.js';
import type { ModelVersion } from '../manifest/types.js';
import { parseModelRef } from '../registry/layout.js';
import { isRegistryUrl, openReadRegistry, openRegistry, remoteUnsupported } from '../registry/snapshot.js';
import { directoryDigest } from '../store/digest.js';
import { artifactObjects, hashObject } from '../store/fetch.js';
import { openStore, type ArtifactStore } from '../store/store.js';

/** Versions checked at once: enough to hide round trips, few enough not to flood the store. */
const CONCURRENCY = 8;

export interface VerifyFinding {
  ref: string;
  problem: string;
}

/** `modelgate verify`: every (or the named) version's artifact is in the store with its size; `--full` re-hashes it. */
export const run: Command = async (ctx) => {
  const { values, positionals } = parseCommand('verify', ctx.argv);
  // --decisions (issue 13, SPEC v2 §8): the logic lives in src/evidence/verify-decisions-command.ts.
  if (values.decisions) {
    if (isRegistryUrl(ctx.registry)) throw remoteUnsupported('verify --decisions');
    const { snapshot, repo } = openRegistry(ctx);
    return (await import('../evidence/verify-decisions-command.js')).runVerifyDecisions(ctx, snapshot, repo);
  }
  const { snapshot } = await openReadRegistry(ctx);
  let versions: ModelVersion[];
  if (positionals.length > 0) {
    versions = await Promise.all(positionals.map((r) => snapshot.resolveRef(parseModelRef(r))));
  } else {
    versions = [];
    for (const m of await snapshot.modelNames()) versions.push(...(await snapshot.versions(m)));
  }
  const store = await openStore((await snapshot.config()).storage, ctx.env);
  const broken: VerifyFinding[] = [];
  try {
    await store.preflight();
    let next = 0;
    const worker = async () => {
      while (next < versions.length) {
        const v = versions[next++]!;
        const problem = await checkVersion(store, v, Boolean(values.full));
        if (problem) broken.push({ ref: `${v.model}@${v.version}`, problem });
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, versions.length) }, worker));
  } finally {
    store.close();
  }
  broken.sort((a, b) => a.ref.localeCompare(b.ref, 'en', { numeric: true }));
  emit(ctx, { checked: versions.length, full: Boolean(values.full), broken }, () =>
    broken.length ? '' : `${versions.length} version(s) verified${values.full ? ' (sha256 re-hashed)' : ''}`,
  );
  if (!ctx.json) for (const b of broken) ctx.stderr(`${b.ref}: ${b.problem}\n`);
  return broken.length ? ExitCode.content : ExitCode.ok;
};

/** What is wrong with one version's artifact, or undefined when it is intact. Store outages throw (exit 3). */
export async function checkVersion(store: ArtifactStore, v: ModelVersion, full: boolean): Promise<string | undefined> {
  let objects;
  try {
    objects = await artifactObjects(store, v.artifact);
  } catch (e) {
    if (e instanceof ModelgateError && e.exit === ExitCode.content) return e.message;
    throw e;
  }
  if (v.artifact.files) {
    const listed = directoryDigest(v.artifact.files);
    if (listed !== v.artifact.sha256) return `artifact.files digest to ${listed}, the manifest says ${v.artifact.sha256}`;
  }
  // A directory's files are checked VERIFY_CONCURRENCY at a time (100,000 HEADs one by one take
  // minutes); the first problem in the list's order is the one reported.
  const problems = new Array<string | undefined>(objects.length);
  let next = 0;
  let found = false;
  const check = async (obj: (typeof objects)[number]): Promise<string | undefined> => {
    const uri = `${store.location.uri}/${obj.key}`;
    const stored = await store.stat(obj.key);
    if (!stored) return `${uri} is missing`;
    if (stored.size !== obj.size) return `${uri} holds ${stored.size} bytes, the manifest says ${obj.size}`;
    if (full) {
      const actual = await hashObject(store, obj.key);
      if (actual.sha256 !== obj.sha256) return `${uri} has sha256 ${actual.sha256}, the manifest says ${obj.sha256}`;
    }
    return undefined;
  };
  const worker = async () => {
    while (!found && next < objects.length) {
      const i = next++;
      problems[i] = await check(objects[i]!);
      if (problems[i] !== undefined) found = true;
    }
  };
  await Promise.all(Array.from({ length: Math.min(VERIFY_CONCURRENCY, objects.length) }, worker));
  return problems.find((p) => p !== undefined);
}

const VERIFY_CONCURRENCY = 16;
