import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { cancellable } from '../cancel.js';
import { emit, parseCommand, type Command } from '../cli/context.js';
import { ExitCode, ModelgateError, usageError } from '../errors.js';
import { GitRepo } from '../git/repo.js';
import { loadManifest } from '../manifest/load.js';
import { EXAMPLE_MODEL, exampleArtifacts } from '../registry/example.js';
import { REGISTRY_FILE, versionFile } from '../registry/layout.js';
import { instantiateTemplate, templateDir } from '../registry/template.js';
import { putArtifact } from '../store/put.js';
import { openStore } from '../store/store.js';

const S3_URI = /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](?:\/[^\s]*)?$/;
const GITHUB_REPO = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\/[A-Za-z0-9._-]{1,100}$/;

/** `--store` as written → the `storage.uri` to record: no trailing slash, file paths absolute. */
export function normalizeStore(store: string, cwd: string): string {
  if (store.startsWith('file://')) {
    const path = store.slice('file://'.length);
    if (!path) throw usageError('--store file://: expected a folder, e.g. file:///var/lib/modelgate/artifacts');
    const absolute = resolve(cwd, path)
      .split(sep)
      .join('/')
      .replace(/(?<!\/)\/+$/, '');
    return `file://${absolute.startsWith('/') ? '' : '/'}${absolute}`;
  }
  const trimmed = store.replace(/(?<!\/)\/+$/, '');
  if (!S3_URI.test(trimmed)) throw usageError(`--store ${store}: expected s3://bucket/prefix or file://path`);
  return trimmed;
}

/** `modelgate init`: a new registry from the template (empty, or with the example model), git initialised, first commit. */
export const run: Command = async (ctx) => {
  const { values, positionals, misuse } = parseCommand('init', ctx.argv);
  if (positionals.length !== 1) throw misuse('expected one folder');
  const store = values.store === undefined ? undefined : normalizeStore(values.store, ctx.cwd);
  if (values.github !== undefined && !GITHUB_REPO.test(values.github)) throw usageError(`--github ${values.github}: expected owner/repo`);
  const dir = resolve(ctx.cwd, positionals[0]!);
  await assertEmptyFolder(dir, positionals[0]!);

  const template = templateDir();
  if (!template) throw new ModelgateError('E_TEMPLATE_MISSING', 'registry-template/ is missing from this modelgate installation', ExitCode.content);
  const example = values.example === true;
  const files = instantiateTemplate(await readTree(template), { store, github: values.github, example });
  // The example's artifacts go into the store first: a store that cannot be written leaves no registry behind.
  const uploaded = example ? await storeExampleArtifacts(files, ctx.env) : [];

  const commit = await cancellable((signal) => createRegistry(dir, files, signal));

  const shown = relative(ctx.cwd, dir) || '.';
  emit(ctx, { dir, commit, files: [...files.keys()].sort(), store: store ?? null, github: values.github ?? null, example: uploaded }, () =>
    [
      `Created a model registry in ${shown} (${files.size} files, commit ${commit.slice(0, 10)}).`,
      ...(example
        ? [
            `The example model ${EXAMPLE_MODEL} has v1 in Production and v2 in Staging; their ONNX files are in the store:`,
            ...uploaded.map((u) => `  ${u.uri} (${u.size} bytes, ${u.reused ? 'already there' : 'written'})`),
          ]
        : ['It has no models yet (`modelgate init --example` adds an example model with real artifacts).']),
      'Next: push it to GitHub, then register a version:',
      `  modelgate --registry ${shown} register <model> <file> --stage Staging`,
    ].join('\n'),
  );
  return 0;
};

/**
 * Writes the registry's files into `dir` (absent or empty), makes it a git repository and
 * commits them. A failure or a cancellation (`signal`) leaves `dir` as it was: every step is
 * undone, the folder removed when this made it.
 */
async function createRegistry(dir: string, files: Map<string, string>, signal: AbortSignal): Promise<string> {
  // The first folder this made (`dir` or one above it), else undefined: `dir` was there, empty.
  const made = await mkdir(dir, { recursive: true });
  try {
    for (const [path, text] of files) {
      signal.throwIfAborted();
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), text);
    }
    const repo = new GitRepo(dir);
    await repo.init('main');
    signal.throwIfAborted();
    await repo.addAll();
    const identity = (await repo.identity()) ?? { name: 'modelgate', email: 'modelgate@users.noreply.github.com' };
    signal.throwIfAborted();
    return await repo.commitIndex('Create model registry (modelgate init)', identity);
  } catch (e) {
    if (made !== undefined) await rm(made, { recursive: true, force: true });
    else for (const entry of await readdir(dir)) await rm(join(dir, entry), { recursive: true, force: true });
    throw e;
  }
}

/**
 * Writes the example's ONNX files into the store the instantiated modelgate.yaml names, and
 * checks that each landed where its manifest says with the sha256 it records.
 */
async function storeExampleArtifacts(
  files: Map<string, string>,
  env: NodeJS.ProcessEnv,
): Promise<Array<{ version: number; uri: string; size: number; reused: boolean }>> {
  const registry = loadManifest(files.get(REGISTRY_FILE)!, REGISTRY_FILE, 'Registry').value!;
  const work = await mkdtemp(join(tmpdir(), 'modelgate-example-'));
  const store = await openStore(registry.storage, env);
  try {
    await store.preflight();
    const out = [];
    for (const a of exampleArtifacts()) {
      const path = versionFile(EXAMPLE_MODEL, a.version);
      const manifest = loadManifest(files.get(path)!, path, 'ModelVersion').value!;
      const local = join(work, `v${a.version}`, a.fileName);
      await mkdir(dirname(local), { recursive: true });
      await writeFile(local, a.bytes);
      const stored = await putArtifact(store, EXAMPLE_MODEL, local);
      if (stored.uri !== manifest.artifact.uri || stored.sha256 !== manifest.artifact.sha256 || stored.size !== manifest.artifact.size) {
        throw new ModelgateError(
          'E_TEMPLATE_INVALID',
          `the registry template's ${path} does not describe the example artifact (stored as ${stored.uri}, sha256 ${stored.sha256})`,
          ExitCode.content,
        );
      }
      out.push({ version: a.version, uri: stored.uri, size: stored.size, reused: stored.reused });
    }
    return out;
  } finally {
    store.close();
    await rm(work, { recursive: true, force: true });
  }
}

async function assertEmptyFolder(dir: string, shown: string): Promise<void> {
  const info = await stat(dir).catch(() => undefined);
  if (!info) return;
  if (!info.isDirectory()) throw new ModelgateError('E_TARGET_EXISTS', `${shown} exists and is not a folder`, ExitCode.usage);
  if ((await readdir(dir)).length > 0)
    throw new ModelgateError('E_TARGET_NOT_EMPTY', `${shown} is not empty; init creates a registry in a new or empty folder`, ExitCode.usage);
}

/** Every file under `root`, by forward-slash relative path. */
async function readTree(root: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = join(entry.parentPath, entry.name);
    files.set(relative(root, full).split(sep).join('/'), await readFile(full, 'utf8'));
  }
  return new Map([...files].sort(([a], [b]) => (a < b ? -1 : 1)));
}
