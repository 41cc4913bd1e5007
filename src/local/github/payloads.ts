// JSON bodies shaped like api.github.com's, built from the emulator's state. Field sets follow
// the schemas of GitHub's OpenAPI description (the tests validate every body against it).

/** Where the emulator's API and web pages live; URLs in the bodies are built from these. */
export interface Urls {
  api: string;
  web: string;
}

export type UserType = 'User' | 'Bot' | 'Organization';

export interface UserRecord {
  login: string;
  id: number;
  type: UserType;
}

export interface RepoRecord {
  owner: string;
  name: string;
  id: number;
  defaultBranch: string;
  cloneUrl?: string;
  private: boolean;
  createdAt: string;
}

export const DOCS = 'https://docs.github.com/rest';

export const nodeId = (prefix: string, id: number) => `${prefix}_kwDO${Buffer.from(String(id)).toString('base64url')}`;

export function userJson(u: UserRecord, urls: Urls) {
  // GitHub percent-encodes bot logins in URLs (`dependabot%5Bbot%5D`) and links bots to their app.
  const api = `${urls.api}/users/${encodeURIComponent(u.login)}`;
  return {
    login: u.login,
    id: u.id,
    node_id: nodeId(u.type === 'Bot' ? 'BOT' : u.type === 'Organization' ? 'O' : 'U', u.id),
    avatar_url: `${urls.web}/avatars/u/${u.id}?v=4`,
    gravatar_id: '',
    url: api,
    html_url: u.type === 'Bot' ? `${urls.web}/apps/${u.login.replace(/\[bot\]$/, '')}` : `${urls.web}/${u.login}`,
    followers_url: `${api}/followers`,
    following_url: `${api}/following{/other_user}`,
    gists_url: `${api}/gists{/gist_id}`,
    starred_url: `${api}/starred{/owner}{/repo}`,
    subscriptions_url: `${api}/subscriptions`,
    organizations_url: `${api}/orgs`,
    repos_url: `${api}/repos`,
    events_url: `${api}/events{/privacy}`,
    received_events_url: `${api}/received_events`,
    type: u.type,
    user_view_type: 'public',
    site_admin: false,
  };
}

/** The fields of `minimal-repository`; `repositoryJson` adds the rest of `repository`. */
export function minimalRepositoryJson(r: RepoRecord, owner: UserRecord, urls: Urls) {
  const full = `${r.owner}/${r.name}`;
  const api = `${urls.api}/repos/${full}`;
  return {
    id: r.id,
    node_id: nodeId('R', r.id),
    name: r.name,
    full_name: full,
    private: r.private,
    owner: userJson(owner, urls),
    html_url: `${urls.web}/${full}`,
    description: null,
    fork: false,
    url: api,
    archive_url: `${api}/{archive_format}{/ref}`,
    assignees_url: `${api}/assignees{/user}`,
    blobs_url: `${api}/git/blobs{/sha}`,
    branches_url: `${api}/branches{/branch}`,
    collaborators_url: `${api}/collaborators{/collaborator}`,
    comments_url: `${api}/comments{/number}`,
    commits_url: `${api}/commits{/sha}`,
    compare_url: `${api}/compare/{base}...{head}`,
    contents_url: `${api}/contents/{+path}`,
    contributors_url: `${api}/contributors`,
    deployments_url: `${api}/deployments`,
    downloads_url: `${api}/downloads`,
    events_url: `${api}/events`,
    forks_url: `${api}/forks`,
    git_commits_url: `${api}/git/commits{/sha}`,
    git_refs_url: `${api}/git/refs{/sha}`,
    git_tags_url: `${api}/git/tags{/sha}`,
    hooks_url: `${api}/hooks`,
    issue_comment_url: `${api}/issues/comments{/number}`,
    issue_events_url: `${api}/issues/events{/number}`,
    issues_url: `${api}/issues{/number}`,
    keys_url: `${api}/keys{/key_id}`,
    labels_url: `${api}/labels{/name}`,
    languages_url: `${api}/languages`,
    merges_url: `${api}/merges`,
    milestones_url: `${api}/milestones{/number}`,
    notifications_url: `${api}/notifications{?since,all,participating}`,
    pulls_url: `${api}/pulls{/number}`,
    releases_url: `${api}/releases{/id}`,
    stargazers_url: `${api}/stargazers`,
    statuses_url: `${api}/statuses/{sha}`,
    subscribers_url: `${api}/subscribers`,
    subscription_url: `${api}/subscription`,
    tags_url: `${api}/tags`,
    teams_url: `${api}/teams`,
    trees_url: `${api}/git/trees{/sha}`,
  };
}

export function repositoryJson(r: RepoRecord, owner: UserRecord, urls: Urls, pushedAt: string) {
  const full = `${r.owner}/${r.name}`;
  const host = new URL(urls.web).host;
  return {
    ...minimalRepositoryJson(r, owner, urls),
    git_url: `git://${host}/${full}.git`,
    ssh_url: `git@${host}:${full}.git`,
    clone_url: r.cloneUrl ?? `${urls.web}/${full}.git`,
    svn_url: `${urls.web}/${full}`,
    mirror_url: null,
    homepage: null,
    language: null,
    forks_count: 0,
    forks: 0,
    stargazers_count: 0,
    watchers_count: 0,
    watchers: 0,
    size: 0,
    default_branch: r.defaultBranch,
    open_issues_count: 0,
    open_issues: 0,
    is_template: false,
    topics: [],
    has_issues: true,
    has_projects: true,
    has_wiki: true,
    has_pages: false,
    has_downloads: true,
    has_discussions: false,
    archived: false,
    disabled: false,
    visibility: r.private ? 'private' : 'public',
    license: null,
    allow_forking: true,
    web_commit_signoff_required: false,
    pushed_at: pushedAt,
    created_at: r.createdAt,
    updated_at: pushedAt,
  };
}

/** GitHub's error body: `{message, documentation_url}` (and `status` as a string, as sent today). */
export function errorJson(status: number, message: string, documentationUrl = DOCS, extra: Record<string, unknown> = {}) {
  return { message, documentation_url: documentationUrl, status: String(status), ...extra };
}
