// Test-side companions of the GitHub emulator (src/local/github-emulator.ts): a validator that
// checks every response against GitHub's OpenAPI description, and webhook payloads built from
// GitHub's real example events. Devdependencies are fine here; the emulator itself uses none.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import {
  startGitHubEmulator,
  type EmulatedPull,
  type EmulatedResponse,
  type EmulatedReview,
  type GitHubEmulator,
  type GitHubEmulatorOptions,
} from '../../src/local/github-emulator.js';

/** The git identity of the GitHub user `name`: the example.com email the tests link its account by. */
export const gitIdentity = (name: string) => {
  const email = `${name.toLowerCase()}@example.com`;
  return { GIT_AUTHOR_NAME: name, GIT_AUTHOR_EMAIL: email, GIT_COMMITTER_NAME: name, GIT_COMMITTER_EMAIL: email };
};

/** git in `cwd` committing as the GitHub user `name` (gitIdentity); its output, trimmed. */
export const gitAs =
  (name: string) =>
  (cwd: string, ...args: string[]): string =>
    execFileSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, ...gitIdentity(name) } }).trim();

const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv) => Ajv;

const SUBSET_ID = 'github-openapi-subset';
const subset = JSON.parse(readFileSync(new URL('../fixtures/github/openapi-subset.json', import.meta.url), 'utf8')) as {
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, unknown> }> }>>;
};

const escapePointer = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

export interface GitHubResponseValidator {
  /** Plug into `startGitHubEmulator({ onResponse })`: records a violation for every invalid body. */
  onResponse(response: EmulatedResponse): void;
  /** Why `response` is not what GitHub's description allows; empty when it is valid. */
  validate(response: EmulatedResponse): string[];
  /** Every violation seen by onResponse, one line each. */
  readonly violations: string[];
  /** Number of responses onResponse checked. */
  readonly checked: number;
}

/**
 * Checks responses against test/fixtures/github/openapi-subset.json (extracted from
 * @octokit/openapi by scripts/extract-github-openapi.mjs). A declared status is checked against
 * its schema; an error status the operation does not declare (401, an injected 500…) and any
 * unknown route against GitHub's `basic-error`; an undeclared success status is a violation.
 */
export function createGitHubResponseValidator(): GitHubResponseValidator {
  const ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false });
  addFormats(ajv);
  ajv.addSchema(subset, SUBSET_ID);
  const cache = new Map<string, ValidateFunction>();
  const compile = (pointer: string) => {
    let fn = cache.get(pointer);
    if (!fn) {
      fn = ajv.compile({ $ref: `${SUBSET_ID}#${pointer}` });
      cache.set(pointer, fn);
    }
    return fn;
  };
  const basicError = '/components/schemas/basic-error';

  function validate(r: EmulatedResponse): string[] {
    const where = `${r.method} ${r.route ?? '(unknown route)'} → ${r.status}`;
    let pointer: string | undefined;
    if (r.route === null) {
      if (r.status !== 404) return [`${where}: an unknown route must answer 404`];
      pointer = basicError;
    } else {
      const op = subset.paths[r.route]?.[r.method.toLowerCase()];
      if (!op) return [`${where}: the operation is not in the OpenAPI subset`];
      const declared = op.responses[String(r.status)];
      if (declared?.content?.['application/json'])
        pointer = `/paths/${escapePointer(r.route)}/${r.method.toLowerCase()}/responses/${r.status}/content/application~1json/schema`;
      else if (declared && r.body === undefined) return [];
      else if (r.status >= 400) pointer = basicError;
      else return [`${where}: status ${r.status} is not declared for this operation`];
    }
    const fn = compile(pointer);
    if (fn(r.body)) return [];
    return (fn.errors ?? []).slice(0, 10).map((e) => `${where}: ${e.instancePath || '(body)'} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
  }

  const violations: string[] = [];
  let checked = 0;
  return {
    validate,
    violations,
    get checked() {
      return checked;
    },
    onResponse(r) {
      checked++;
      violations.push(...validate(r));
    },
  };
}

/** An emulator whose every response goes through a fresh validator (`emulator.validator`). */
export async function startValidatedGitHubEmulator(
  options: Omit<GitHubEmulatorOptions, 'onResponse'> = {},
): Promise<GitHubEmulator & { validator: GitHubResponseValidator }> {
  const validator = createGitHubResponseValidator();
  const emulator = await startGitHubEmulator({ ...options, onResponse: (r) => validator.onResponse(r) });
  return Object.assign(emulator, { validator });
}

// ---- webhook payloads -------------------------------------------------------------------

interface ExampleEvent {
  name: string;
  examples: Array<Record<string, unknown> & { action?: string }>;
}
const examples = createRequire(import.meta.url)('@octokit/webhooks-examples') as ExampleEvent[];

function example(name: string, action: string): Record<string, unknown> {
  const found = examples.find((e) => e.name === name)?.examples.find((e) => e.action === action);
  if (!found) throw new Error(`@octokit/webhooks-examples has no ${name}.${action}`);
  return structuredClone(found);
}

/** Starts from GitHub's example and keeps only what describes this emulator's world. */
function overwrite(base: Record<string, unknown>, pull: EmulatedPull, simple: boolean) {
  const json = pull.toJSON() as Record<string, unknown> & { base: { repo: Record<string, unknown> } };
  const pr = { ...(base.pull_request as Record<string, unknown>), ...json };
  if (simple)
    for (const k of [
      'merged',
      'mergeable',
      'rebaseable',
      'mergeable_state',
      'merged_by',
      'comments',
      'review_comments',
      'maintainer_can_modify',
      'commits',
      'additions',
      'deletions',
      'changed_files',
    ])
      delete pr[k];
  delete base.installation;
  delete base.organization;
  delete base.enterprise;
  base.pull_request = pr;
  base.repository = { ...(base.repository as Record<string, unknown>), ...json.base.repo };
  return json;
}

export type PullRequestAction = 'opened' | 'synchronize' | 'reopened' | 'edited' | 'closed';

/**
 * A `pull_request` / `pull_request_target` payload (same shape) for `pull`, from GitHub's real
 * example with repository, number, head/base sha and refs, and user replaced.
 * For `synchronize`, `before` is the previous head sha when given.
 */
export function pullRequestEvent(pull: EmulatedPull, action: PullRequestAction = 'opened', opts: { before?: string } = {}) {
  const payload = example('pull_request', action);
  const json = overwrite(payload, pull, false);
  payload.action = action;
  payload.number = pull.number;
  payload.sender = json.user;
  if (action === 'synchronize') {
    payload.before = opts.before ?? payload.before;
    payload.after = pull.head.sha;
  }
  return payload;
}

/** A `pull_request_review` payload for `review` (default: the pull's latest) on `pull`. */
export function pullRequestReviewEvent(
  pull: EmulatedPull,
  review: EmulatedReview | undefined = pull.reviews.at(-1),
  action: 'submitted' | 'dismissed' | 'edited' = 'submitted',
) {
  if (!review) throw new Error('pullRequestReviewEvent: the pull has no review');
  const payload = example('pull_request_review', action === 'edited' ? 'submitted' : action);
  overwrite(payload, pull, true);
  payload.action = action;
  delete payload.number;
  const rest = review.toJSON();
  payload.review = { ...(payload.review as Record<string, unknown>), ...rest, body: review.body || null, state: review.state.toLowerCase() };
  payload.sender = rest.user;
  return payload;
}

/** Writes a payload where GITHUB_EVENT_PATH can point; returns the path. */
export async function writeEventFile(dir: string, payload: unknown, name = 'event.json'): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, name);
  await writeFile(path, JSON.stringify(payload, null, 2));
  return path;
}

/**
 * A `workflow_run` `completed` payload, from GitHub's real example: the `modelgate review`
 * workflow (on pull_request_review) finished for `pull`. `listed` fills
 * `workflow_run.pull_requests` as GitHub does for a same-repository branch; a fork's run has
 * an empty list (the default), which is why the number travels as an artifact.
 */
export function workflowRunEvent(pull: EmulatedPull, opts: { listed?: boolean; workflow?: string; conclusion?: string; event?: string } = {}) {
  const payload = example('workflow_run', 'completed');
  const json = pull.toJSON() as Record<string, unknown> & {
    head: { ref: string; sha: string; repo: Record<string, unknown> };
    base: { ref: string; sha: string; repo: Record<string, unknown> };
  };
  const repository = { ...(payload.repository as Record<string, unknown>), ...json.base.repo };
  const workflow = opts.workflow ?? 'modelgate review';
  const miniRepo = (r: Record<string, unknown>) => ({ id: r.id, url: r.url, name: r.name });
  const run = payload.workflow_run as Record<string, unknown>;
  delete payload.organization;
  delete payload.installation;
  delete payload.enterprise;
  payload.repository = repository;
  payload.workflow = { ...(payload.workflow as Record<string, unknown>), name: workflow, path: '.github/workflows/modelgate-review.yml' };
  payload.workflow_run = {
    ...run,
    name: workflow,
    path: '.github/workflows/modelgate-review.yml',
    event: opts.event ?? 'pull_request_review',
    status: 'completed',
    conclusion: opts.conclusion ?? 'success',
    head_branch: json.head.ref,
    head_sha: json.head.sha,
    repository,
    head_repository: { ...(run.head_repository as Record<string, unknown>), ...json.head.repo },
    pull_requests: opts.listed
      ? [
          {
            url: json.url,
            id: json.id,
            number: pull.number,
            head: { ref: json.head.ref, sha: json.head.sha, repo: miniRepo(json.head.repo) },
            base: { ref: json.base.ref, sha: json.base.sha, repo: miniRepo(json.base.repo) },
          },
        ]
      : [],
  };
  return payload;
}

/**
 * A `merge_group` `checks_requested` payload, from GitHub's real example: the queue's group for
 * `pull`, whose commit `headSha` GitHub built on `baseSha` of the pull request's base branch, on
 * the queue's branch `gh-readonly-queue/<base>/pr-<n>-<baseSha>`.
 */
export function mergeGroupEvent(pull: EmulatedPull, group: { headSha: string; baseSha: string }) {
  const payload = example('merge_group', 'checks_requested');
  const json = pull.toJSON() as Record<string, unknown> & { base: { ref: string; repo: Record<string, unknown> } };
  const old = payload.merge_group as Record<string, unknown> & { head_commit: Record<string, unknown> };
  delete payload.organization;
  delete payload.installation;
  delete payload.enterprise;
  payload.repository = { ...(payload.repository as Record<string, unknown>), ...json.base.repo };
  payload.merge_group = {
    ...old,
    head_sha: group.headSha,
    head_ref: `refs/heads/${mergeQueueBranch(pull, group.baseSha)}`,
    base_sha: group.baseSha,
    base_ref: `refs/heads/${json.base.ref}`,
    head_commit: { ...old.head_commit, id: group.headSha },
  };
  return payload;
}

/** The branch GitHub's merge queue builds a group for `pull` on. */
export const mergeQueueBranch = (pull: EmulatedPull, baseSha: string) => `gh-readonly-queue/${pull.base.ref}/pr-${pull.number}-${baseSha}`;
