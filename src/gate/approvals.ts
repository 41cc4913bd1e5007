import type { ApprovalGroup } from '../manifest/types.js';
import type { CheckResult, GitHubUser, PullRequestInfo, Review, TeamResolver } from './types.js';

/** A login as GitHub compares it: case-insensitively. */
const norm = (login: string) => login.toLowerCase();

export function isBot(user: GitHubUser): boolean {
  return user.type === 'Bot' || /\[bot\]$/i.test(user.login);
}

/**
 * Logins whose approval stands on the head commit. The latest review of each reviewer
 * decides (COMMENTED and PENDING reviews change nothing); the approval must be on `headSha`;
 * the author and bots never count.
 */
export function effectiveApprovers(reviews: Review[], pr: PullRequestInfo, contributors: string[] = []): string[] {
  const latest = new Map<string, Review>();
  for (const r of chronological(reviews)) {
    if (!r.user || typeof r.user.login !== 'string') continue;
    if (r.state === 'COMMENTED' || r.state === 'PENDING') continue;
    latest.set(norm(r.user.login), r);
  }
  const author = norm(pr.author.login);
  // Whoever wrote or committed a commit of the pull request reviews their own work: never counted.
  const excluded = new Set(contributors.map(norm));
  const out: string[] = [];
  for (const [login, r] of latest) {
    if (r.state !== 'APPROVED' || r.commitId !== pr.headSha) continue;
    if (login === author || excluded.has(login) || isBot(r.user!)) continue;
    out.push(r.user!.login);
  }
  return out.sort((a, b) => norm(a).localeCompare(norm(b)));
}

/**
 * Reviews oldest first. The API lists them so; `submitted_at` reorders them only when every
 * submitted review has one: mixing list positions with timestamps could put a later
 * "changes requested" before the approval it withdraws.
 */
function chronological(reviews: Review[]): Review[] {
  const time = (r: Review) => (r.submittedAt ? Date.parse(r.submittedAt) : NaN);
  if (!reviews.every((r) => r.state === 'PENDING' || Number.isFinite(time(r)))) return reviews;
  return reviews
    .map((r, i) => ({ r, i, t: r.state === 'PENDING' ? Infinity : time(r) }))
    .sort((a, b) => a.t - b.t || a.i - b.i)
    .map(({ r }) => r);
}

export function describeGroup(g: ApprovalGroup): string {
  const who = [...(g.teams ?? []).map((t) => `team ${t}`), ...(g.users?.length ? [`users ${g.users.join(', ')}`] : [])];
  return `${g.count} approval${g.count === 1 ? '' : 's'} from ${who.join(' or ') || 'nobody (the group names no team or user)'}`;
}

/**
 * Judges every approval group of a rule. With `distinct` (policy-bot's `distinctApprovers`, the
 * default) one person fills one group only: approvers are assigned to groups by a maximum
 * matching, so the most groups are satisfied; otherwise each group counts everyone eligible.
 */
export async function judgeGroups(
  groups: ApprovalGroup[],
  approvers: string[] | undefined,
  teams: TeamResolver,
  required: boolean,
  distinct: boolean,
): Promise<CheckResult[]> {
  const eligible: string[][] = [];
  const via: Array<Map<string, string>> = groups.map(() => new Map<string, string>());
  for (const [i, g] of groups.entries()) eligible.push(await eligibleFor(g, approvers ?? [], teams, via[i]!));
  const counted = distinct ? assign(groups, eligible) : eligible.map((e, i) => e.slice(0, Math.max(e.length, groups[i]!.count)));
  return groups.map((g, i) => ({
    ...verdict(g, counted[i]!, required, distinct && eligible[i]!.length > counted[i]!.length),
    // Who filled the group and through which team: the decision record lists it (SPEC v2 §8).
    filledBy: counted[i]!.map((login) => (via[i]!.has(login) ? { login, team: via[i]!.get(login)! } : { login })),
  }));
}

/** Approvers eligible for `group`; `via` gets the team of each one eligible through a team rather than by login. */
async function eligibleFor(group: ApprovalGroup, approvers: string[], teams: TeamResolver, via: Map<string, string>): Promise<string[]> {
  const users = new Set((group.users ?? []).map(norm));
  const out: string[] = [];
  for (const login of approvers) {
    if (out.some((c) => norm(c) === norm(login))) continue;
    let ok = users.has(norm(login));
    for (const team of group.teams ?? []) {
      if (ok) break;
      ok = await teams.isActiveMember(team, login);
      if (ok) via.set(login, team);
    }
    if (ok) out.push(login);
  }
  return out;
}

/** Each approver to at most one group, group i taking at most count_i: augmenting paths (Kuhn's algorithm). */
function assign(groups: ApprovalGroup[], eligible: string[][]): string[][] {
  const slots: number[] = [];
  groups.forEach((g, i) => {
    for (let k = 0; k < g.count; k++) slots.push(i);
  });
  const holder = new Map<number, string>();
  const slotOf = new Map<string, number>();
  const tryPlace = (login: string, seen: Set<number>): boolean => {
    for (let s = 0; s < slots.length; s++) {
      if (seen.has(s) || !eligible[slots[s]!]!.includes(login)) continue;
      seen.add(s);
      const other = holder.get(s);
      if (other === undefined || tryPlace(other, seen)) {
        holder.set(s, login);
        slotOf.set(login, s);
        return true;
      }
    }
    return false;
  };
  const everyone = [...new Set(eligible.flat())].sort();
  for (const login of everyone) tryPlace(login, new Set());
  const out: string[][] = groups.map(() => []);
  for (const [s, login] of holder) out[slots[s]!]!.push(login);
  return out.map((l) => l.sort());
}

function verdict(group: ApprovalGroup, counted: string[], required: boolean, sharedAway: boolean): CheckResult {
  const check = `approvals: ${describeGroup(group)}`;
  const need = Math.max(0, group.count - counted.length);
  const given = counted.length ? `approved by ${counted.join(', ')}` : 'no approval yet';
  if (need === 0) return { check, ok: true, status: 'pass', detail: `${counted.length}/${group.count}: ${given}`, approvedBy: counted };
  const missing = `${need} more from ${[...(group.teams ?? []).map((t) => `team ${t}`), ...(group.users ?? [])].join(', ') || 'nobody'}${sharedAway ? ' (each approver fills one group: distinctApprovers)' : ''}`;
  if (!required) {
    return { check, ok: true, status: 'pass', detail: `not required (--no-approvals); ${given}; would need ${missing}`, approvedBy: counted, missing };
  }
  return { check, ok: false, status: 'pending', detail: `${counted.length}/${group.count}: ${given}; missing ${missing}`, approvedBy: counted, missing };
}
