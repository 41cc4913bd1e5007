import type { Artifact, ModelVersion, Stage } from '../manifest/types.js';
import type { Problem } from '../manifest/problem.js';
import type { RegistrySnapshot } from '../registry/snapshot.js';

/** A path changed by the pull request, as git or the files endpoint reports it. */
export interface ChangedFile {
  path: string;
  /** A added, M modified, D deleted (R/C are split into D + A by the callers). */
  status: string;
}

export interface GitHubUser {
  login: string;
  /** `Bot` for apps; `User` for people. */
  type?: string;
}

/** The pull request as far as the gate cares: who opened it and which commit is judged. */
export interface PullRequestInfo {
  number: number;
  author: GitHubUser;
  headSha: string;
  title?: string;
  headRef?: string;
  /** The branch the pull request would merge into; the gate fails any but the registry's. */
  baseRef?: string;
  /**
   * The repository's default branch, as GitHub reports it: the registry's branch must be it,
   * since the configuration naming the registry's branch is read from the pull request's base.
   */
  defaultBranch?: string;
}

export type ReviewState = 'APPROVED' | 'CHANGES_REQUESTED' | 'COMMENTED' | 'DISMISSED' | 'PENDING' | (string & {});

/** One review, in the order GitHub returns them (oldest first). */
export interface Review {
  id?: number;
  user: GitHubUser | null;
  state: ReviewState;
  commitId: string | null;
  submittedAt?: string;
}

/** Team membership as of now (GET /orgs/{org}/teams/{team}/memberships/{user}); throws on any API failure. */
export interface TeamResolver {
  isActiveMember(team: string, login: string): Promise<boolean>;
}

/** Checks the stored bytes of an artifact; throws on a store failure (which fails the gate). */
export interface ArtifactVerifier {
  verify(artifact: Artifact, mode: 'full' | 'exists'): Promise<{ ok: boolean; detail: string }>;
}

/** One reason a scanned artifact is refused: where (a file of the artifact, a byte offset) and what. */
export interface ScanFinding {
  file: string;
  offset: number;
  /** `module.name` of the refused global, when the finding is one. */
  global?: string;
  /** For a finding about a text file (an MLflow MLmodel): its line, 1-based. */
  line?: number;
  message: string;
}

/**
 * Reads the pickle streams of a version's stored artifact without unpickling (`scan: pickle`).
 * `files` names every file scanned; `note` explains a scan deliberately not done here (a
 * preview). Throws on a store failure (which fails the gate).
 */
export interface ArtifactScanner {
  scanPickles(version: ModelVersion, allowGlobals: readonly string[]): Promise<{ files: string[]; findings: ScanFinding[]; note?: string }>;
}

/** Stage history of the base branch, from git (first-parent history of the registry files). */
export interface StageHistory {
  /** Whether `model@version` was ever in `stage` in a commit of the base branch. */
  wasInStage(model: string, version: number, stage: Stage): Promise<boolean>;
  /** The versions `model@alias` pointed at in a commit of the base branch, oldest first (SPEC v3 §9; `rollback --alias`). */
  aliasTargets?(model: string, alias: string): Promise<number[]>;
}

export interface GateOptions {
  /** `skip` for a pre-push check (`--no-approvals`): approvals are reported but not required. */
  approvals: 'require' | 'skip';
  /** Upper bound for each outside call (team lookup, artifact check); default 60 s. */
  timeoutMs?: number;
}

export interface GateInput {
  /** Trusted: the policy, configuration and schemas come from here. */
  base: RegistrySnapshot;
  /** Data: the registry as the merge would leave it (see `mergedSource`). */
  head: RegistrySnapshot;
  changedFiles: ChangedFile[];
  pullRequest?: PullRequestInfo;
  /** Undefined when no pull request is known; no approval is then given. */
  reviews?: Review[];
  teams: TeamResolver;
  artifacts: ArtifactVerifier;
  /** For rules with `scan: pickle`; without one such a rule fails (nothing is passed unscanned). */
  scanner?: ArtifactScanner;
  history: StageHistory;
  options: GateOptions;
  /** The registry's folder inside the repository ('' at the top): anchors `/` path patterns. */
  prefix?: string;
  /** Logins that authored or committed a commit of the pull request (`excludeContributors`). */
  contributors?: string[];
  /** Authors and committers of the pull request's commits whose email is linked to no GitHub account. */
  unlinkedCommits?: UnlinkedCommit[];
}

/** An author or committer of a pull request's commit whom GitHub links to no account: nobody it could exclude. */
export interface UnlinkedCommit {
  sha: string;
  role: 'author' | 'committer';
  email: string;
}

/** Who wrote a pull request's commits, as GitHub attributes them. */
export interface Contributors {
  logins: string[];
  unlinked: UnlinkedCommit[];
}

export type CheckStatus = 'pass' | 'fail' | 'pending';

/** One verdict: `ok` is false for failures and for pending approvals (see `status`). */
export interface CheckResult {
  check: string;
  ok: boolean;
  status: CheckStatus;
  detail: string;
  /** For approval checks: who counted, and what is still missing. */
  approvedBy?: string[];
  /** For approval checks: each counted approver and the team that made them eligible (none: listed by login). */
  filledBy?: Array<{ login: string; team?: string }>;
  missing?: string;
  /** For scan checks: every refused global or unscannable stream. */
  findings?: ScanFinding[];
}

export interface RuleResult {
  /** The rule's name, or a description when it has none. */
  rule: string;
  results: CheckResult[];
}

export type ChangeKind = 'new-version' | 'stage' | 'annotations' | 'version-edit' | 'alias' | 'model' | 'file' | 'pin' | 'registry';

/** One changed file and everything judged about it. */
export interface Transition {
  file: string;
  kind: ChangeKind;
  model?: string;
  version?: number;
  /** `absent` for a new version. */
  from?: Stage | 'absent';
  to?: Stage;
  annotationKeys?: string[];
  /** An alias change (kind `alias`, SPEC v3 §9): the alias, and the versions it pointed at before and after (absent: unset). */
  alias?: { name: string; from?: number; to?: number };
  /** Checks that belong to the change itself (immutability, stage order, validity). */
  checks: CheckResult[];
  rules: RuleResult[];
  /**
   * Metrics of the version after the change, and of the champion it replaces (for reports): for
   * an alias move, the version the alias pointed at on the base branch.
   */
  metrics?: Record<string, number>;
  champion?: { version: number; metrics: Record<string, number> };
  artifact?: { sha256: string; uri: string; size: number };
}

export type GateDecision = 'pass' | 'fail' | 'pending';

export interface Decision {
  decision: GateDecision;
  transitions: Transition[];
  /** Problems not tied to one rule: invalid manifests (with positions), unreadable policy… */
  problems: Problem[];
  /** Changed files that no rule covers. */
  uncovered: string[];
  /** One line a person reads first. */
  summary: string;
}
