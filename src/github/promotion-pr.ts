import { createOnce, github, type GitHubConnection } from './client.js';

export interface OpenedPullRequest {
  number: number;
  url: string;
  created: boolean;
}

/**
 * Opens a pull request from `branch` into `base`, or updates title and body of the one already
 * open for that branch: re-running `promote --pr` never piles up duplicates.
 */
export async function openOrUpdatePullRequest(
  c: GitHubConnection,
  opts: { branch: string; base: string; title: string; body: string },
): Promise<OpenedPullRequest> {
  const findOpen = async () => {
    const open = await github(`looking for an open pull request from ${opts.branch}`, () =>
      c.octokit.rest.pulls.list({ owner: c.owner, repo: c.repo, head: `${c.owner}:${opts.branch}`, base: opts.base, state: 'open', per_page: 10 }),
    );
    const found = open.data.find((p) => p.head.ref === opts.branch);
    return found && { number: found.number, url: found.html_url };
  };
  const existing = await findOpen();
  if (existing) {
    const { data } = await github(`updating pull request #${existing.number}`, () =>
      c.octokit.rest.pulls.update({ owner: c.owner, repo: c.repo, pull_number: existing.number, title: opts.title, body: opts.body }),
    );
    return { number: data.number, url: data.html_url, created: false };
  }
  // A pull request found after a failed POST is the one that POST opened.
  const opened = await createOnce(`opening a pull request from ${opts.branch}`, findOpen, async () => {
    const { data } = await c.octokit.rest.pulls.create({
      owner: c.owner,
      repo: c.repo,
      head: opts.branch,
      base: opts.base,
      title: opts.title,
      body: opts.body,
    });
    return { number: data.number, url: data.html_url };
  });
  return { ...opened, created: true };
}
