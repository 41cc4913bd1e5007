/**
 * The open promotion pull requests `serve`'s pages list (SPEC v3 §11: serve only). From GitHub
 * when serve has a repository (`github.repository`) and a token (GITHUB_TOKEN or GH_TOKEN): the
 * open pull requests whose head is a `modelgate/*` branch. Otherwise from the remote's open
 * `modelgate/*` branches, which is what a pull request is opened from: the page says which.
 */
import type { GitRepo } from '../git/repo.js';
import { parseBranch, type BranchSpec } from '../promote/change.js';

/** One open promotion: its branch and what modelgate named it for; number, title and link when GitHub answered. */
export interface OpenPromotion {
  branch: string;
  spec: BranchSpec;
  number?: number;
  title?: string;
  url?: string;
  author?: string;
}

export interface OpenPromotions {
  /** Where the list comes from: GitHub's open pull requests, or the remote's branches (no GitHub configured). */
  source: 'github' | 'branches';
  /** The list could not be read (GitHub or the remote did not answer); the page says so. */
  unavailable?: true;
  promotions: OpenPromotion[];
}

/** The promotions of one model (the sync branch belongs to every model). */
export function promotionsOf(open: OpenPromotions, model: string): OpenPromotions {
  return { ...open, promotions: open.promotions.filter((p) => p.spec.kind === 'sync' || p.spec.model === model) };
}

/** Reads the open promotions: GitHub's pull requests with a repository and a token, else the remote's branches. */
export async function readOpenPromotions(opts: { repo: GitRepo; remote: string; repository?: string; env: NodeJS.ProcessEnv }): Promise<OpenPromotions> {
  const token = opts.env.GITHUB_TOKEN || opts.env.GH_TOKEN;
  if (opts.repository && token) {
    try {
      const { createOctokit, github, parseRepository } = await import('../github/client.js');
      const octokit = createOctokit({ token, baseUrl: opts.env.GITHUB_API_URL });
      const { owner, repo } = parseRepository(opts.repository);
      const pulls = await github('listing the open pull requests', () =>
        octokit.paginate(octokit.rest.pulls.list, { owner, repo, state: 'open', per_page: 100 }),
      );
      const promotions: OpenPromotion[] = [];
      for (const p of pulls) {
        const spec = parseBranch(p.head.ref);
        if (spec) promotions.push({ branch: p.head.ref, spec, number: p.number, title: p.title, url: p.html_url, ...(p.user ? { author: p.user.login } : {}) });
      }
      return { source: 'github', promotions };
    } catch {
      return { source: 'github', unavailable: true, promotions: [] };
    }
  }
  const branches = await opts.repo.remoteBranches(opts.remote, 'modelgate/*');
  const promotions = branches.flatMap((branch) => {
    const spec = parseBranch(branch);
    return spec ? [{ branch, spec }] : [];
  });
  return { source: 'branches', promotions: promotions.sort((a, b) => a.branch.localeCompare(b.branch)) };
}
