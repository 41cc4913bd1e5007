import { stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { emit, parseCommand, type Command } from '../cli/context.js';
import { ExitCode, usageError } from '../errors.js';
import { formatProblem } from '../manifest/problem.js';
import { validateRegistry } from '../manifest/validate-registry.js';
import { catalogFacts } from '../registry/catalog.js';
import { isRegistryUrl, locateRegistry, openReadRegistry } from '../registry/snapshot.js';
import { WorktreeSource } from '../registry/source.js';

/**
 * `modelgate validate [path…]`: the whole registry, or just the given files and folders (with
 * the cross-file rules that involve them). One `file:line:col: message` per problem on stderr,
 * or `{valid, problems}` with --json; exit 1 when anything is invalid.
 */
export const run: Command = async (ctx) => {
  const { positionals } = parseCommand('validate', ctx.argv);
  if (isRegistryUrl(ctx.registry)) {
    if (positionals.length) throw usageError("validate --registry <git-url> checks the whole registry at the remote's tip; paths name files of a clone");
    return report(ctx, await validateRegistry((await openReadRegistry(ctx)).snapshot.source));
  }
  const root = locateRegistry(ctx.cwd, ctx.registry);
  const only: string[] = [];
  for (const arg of positionals) {
    const abs = resolve(ctx.cwd, arg);
    const rel = relative(root, abs);
    if (rel.startsWith('..') || isAbsolute(rel)) throw usageError(`${arg} is outside the registry ${root}`);
    try {
      await stat(abs);
    } catch {
      throw usageError(`${arg}: no such file or folder`);
    }
    only.push(rel.split(sep).join('/'));
  }

  // The whole work tree: the versions the catalog knows (by blob id, as `sync` takes them) are
  // taken as loaded, so an unchanged registry is not parsed again; the rules across files all run.
  const known = positionals.length ? undefined : (await catalogFacts(root, new Set()))?.known;
  const result = await validateRegistry(new WorktreeSource(root), { only: positionals.length ? only : undefined, known });
  if (positionals.length && result.checked === 0) {
    throw usageError(`${positionals.join(' ')}: not registry manifests (modelgate.yaml, policies/promotion.yaml, models/<model>/…)`);
  }

  return report(ctx, result);
};

function report(ctx: Parameters<Command>[0], result: Awaited<ReturnType<typeof validateRegistry>>): number {
  if (ctx.json) {
    emit(ctx, { valid: result.valid, problems: result.problems, checked: result.checked }, () => '');
  } else {
    for (const p of result.problems) ctx.stderr(formatProblem(p) + '\n');
    if (!ctx.quiet) {
      const n = result.problems.length;
      if (n) ctx.stderr(`${n} problem${n === 1 ? '' : 's'} in ${new Set(result.problems.map((p) => p.file)).size} file(s)\n`);
      else ctx.stdout(`${result.checked} file${result.checked === 1 ? '' : 's'} checked, all valid\n`);
    }
  }
  return result.valid ? ExitCode.ok : ExitCode.content;
}
