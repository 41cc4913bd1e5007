/** What CI run produced a version, from the runner's environment (GitHub Actions, GitLab CI). */
export function runFromEnv(env: NodeJS.ProcessEnv): { id: string; url?: string; system: string } | undefined {
  if (env.GITHUB_ACTIONS === 'true' || env.GITHUB_RUN_ID) {
    const id = env.GITHUB_RUN_ID;
    if (!id) return undefined;
    const server = (env.GITHUB_SERVER_URL || 'https://github.com').replace(/(?<!\/)\/+$/, '');
    const url = env.GITHUB_REPOSITORY ? `${server}/${env.GITHUB_REPOSITORY}/actions/runs/${id}` : undefined;
    const attempt = env.GITHUB_RUN_ATTEMPT && env.GITHUB_RUN_ATTEMPT !== '1' ? `-${env.GITHUB_RUN_ATTEMPT}` : '';
    return { id: `${id}${attempt}`, ...(url ? { url: attempt ? `${url}/attempts/${env.GITHUB_RUN_ATTEMPT}` : url } : {}), system: 'github-actions' };
  }
  if (env.GITLAB_CI === 'true' || env.CI_PIPELINE_ID) {
    const id = env.CI_PIPELINE_ID;
    if (!id) return undefined;
    const url = env.CI_JOB_URL || env.CI_PIPELINE_URL;
    return { id, ...(url ? { url } : {}), system: 'gitlab-ci' };
  }
  return undefined;
}
