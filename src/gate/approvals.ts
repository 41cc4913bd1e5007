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
export function effectiveApprovers(reviews: Review[], pr: PullRequestInfo): string[] {
  const latest = new Map<string, Review>();
  for (const r of chronological(reviews)) {
    if (!r.user || typeof r.user.login !== 'string') continue;
    if (r.state === 'COMMENTED' || r.state === 'PENDING') continue;
    latest.set(norm(r.user.login), r);
  }
  const author = norm(pr.author.login);
  const out: string[] = [];
  for (const [login, r] of latest) {
    if (r.state !== 'APPROVED' || r.commitId !== pr.headSha) continue;
    if (login === author || isBot(r.user!)) continue;
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
  return reviews.map((r, i) => ({ r, i, t: r.state === 'PENDING' ? Infinity : time(r) })).sort((a, b) => a.t - b.t || a.i - b.i).map(({ r }) => r);
}

export function describeGroup(g: ApprovalGroup): string {
  const who = [
    ...(g.teams ?? []).map((t) => `team ${t}`),
    ...(g.users?.length ? [`users ${g.users.join(', ')}`] : []),
  ];
  return `${g.count} approval${g.count === 1 ? '' : 's'} from ${who.join(' or ') || 'nobody (the group names no team or user)'}`;
}

/**
 * Judges one approval group. Team membership is looked up now, for each approver, through
 * `teams`; a lookup that throws propagates, and the caller fails the check with its reason.
 */
export async function judgeGroup(
  group: ApprovalGroup,
  approvers: string[] | undefined,
  teams: TeamResolver,
  required: boolean,
): Promise<CheckResult> {
  const check = `approvals: ${describeGroup(group)}`;
  const users = new Set((group.users ?? []).map(norm));
  const counted: string[] = [];
  for (const login of approvers ?? []) {
    if (counted.some((c) => norm(c) === norm(login))) continue;
    let eligible = users.has(norm(login));
    for (const team of group.teams ?? []) {
      if (eligible) break;
      eligible = await teams.isActiveMember(team, login);
    }
    if (eligible) counted.push(login);
  }
  const need = Math.max(0, group.count - counted.length);
  const given = counted.length ? `approved by ${counted.join(', ')}` : 'no approval yet';
  if (need === 0) return { check, ok: true, status: 'pass', detail: `${counted.length}/${group.count}: ${given}`, approvedBy: counted };
  const missing = `${need} more from ${[...(group.teams ?? []).map((t) => `team ${t}`), ...(group.users ?? [])].join(', ') || 'nobody'}`;
  if (!required) {
    return { check, ok: true, status: 'pass', detail: `not required (--no-approvals); ${given}; would need ${missing}`, approvedBy: counted, missing };
  }
  return { check, ok: false, status: 'pending', detail: `${counted.length}/${group.count}: ${given}; missing ${missing}`, approvedBy: counted, missing };
}
