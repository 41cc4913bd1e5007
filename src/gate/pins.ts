import { ModelgateError } from '../errors.js';
import { readPinInput } from '../deploy/input.js';
import { environmentsOf } from '../deploy/render.js';
import { renderPins, type FileChange } from '../deploy/plan.js';
import { MODELS_DIR, REGISTRY_FILE } from '../registry/layout.js';
import type { RegistrySnapshot } from '../registry/snapshot.js';
import type { ChangedFile, CheckResult } from './types.js';

/** What the gate concludes about the pull request's deploy pins. */
export interface PinVerdict {
  /** Changed deploy files whose new content is exactly what rendering the merged registry onto the base's files gives. */
  explained: Set<string>;
  checks: CheckResult[];
  /** The base → merged diff of the pins, for the report. */
  files?: FileChange[];
}

const FIX = 'run `modelgate sync` on the branch, commit and push (or re-run the modelgate command that made the change)';

/**
 * The pins of the merged registry (SPEC v2 §3, §7). Rendering must succeed (a model named like
 * a hand-written file, a Deployment without an image… fail here, not after the merge); the
 * merged deploy files must already hold that rendering, so what reviewers see in the diff is
 * what Argo CD will sync; and a changed deploy file counts as a pin change only when its new
 * text is exactly the rendering applied to the base's file. Any other edit is an ordinary file
 * change that a `paths` rule must cover. Only the models the change touches are rendered,
 * unless the configuration or a kustomization changes.
 */
export async function judgePins(base: RegistrySnapshot, merged: RegistrySnapshot, changed: ChangedFile[]): Promise<PinVerdict> {
  const verdict: PinVerdict = { explained: new Set(), checks: [] };
  const paths = changed.map((f) => f.path).filter((p) => !p.startsWith('/'));
  if (!paths.length) return verdict;
  let only: Set<string> | undefined = new Set();
  try {
    const registry = await merged.config();
    const envs = environmentsOf(registry);
    const models = new Set(await merged.modelNames());
    for (const p of paths) {
      const parts = p.split('/');
      if (p === REGISTRY_FILE || parts.at(-1) === 'kustomization.yaml') only = undefined;
      else if (parts[0] === MODELS_DIR && parts[1]) only?.add(parts[1]);
      else {
        const env = envs.find((e) => p.startsWith(`${e.path}/`));
        const name = env && /\.yaml$/.test(p) ? p.slice(env.path.length + 1, -'.yaml'.length) : undefined;
        // A pin moves with its model; any other deploy file may collide with any pin: the whole environment is rendered.
        if (name !== undefined && models.has(name)) only?.add(name);
        else if (env || parts[0] === 'deploy') only = undefined;
      }
      if (!only) break;
    }
    if (only && only.size === 0) return verdict;
    const input = await readPinInput(merged, { registry, ...(only ? { only } : {}) });
    const current = renderPins(input);
    if (current.files.length) {
      verdict.checks.push({
        check: 'deploy pins',
        ok: false,
        status: 'fail',
        detail: `the pull request does not carry the pins its change moves: ${current.files.map((f) => f.path).join(', ')} differ from the rendering of the merged registry; ${FIX}`,
      });
    } else verdict.checks.push({ check: 'deploy pins', ok: true, status: 'pass', detail: 'the deploy files equal the rendering of the merged registry' });
    const fromBase = renderPins(await readPinInput(merged, { registry, ...(only ? { only } : {}), deployFrom: base.source }));
    const expected = new Map(fromBase.files.map((f) => [f.path, f.after]));
    verdict.files = fromBase.files;
    for (const f of changed) {
      if (!expected.has(f.path)) continue;
      const after = f.status.startsWith('D') ? null : ((await merged.source.readFile(f.path)) ?? null);
      if (after === expected.get(f.path)) verdict.explained.add(f.path);
    }
  } catch (e) {
    const why = e instanceof ModelgateError ? e.message.split('\n')[0] : `unexpected ${(e as Error)?.name ?? 'error'}`;
    verdict.checks.push({
      check: 'deploy pins',
      ok: false,
      status: 'fail',
      detail: `the merged registry's pins cannot be rendered, so merging would break every sync: ${why}`,
    });
  }
  return verdict;
}
