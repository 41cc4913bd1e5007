// A registry behind a git http-backend remote and the GitHub emulator, cloned for `--pr` runs.
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { serveGitHttp } from '../../src/local/git-http-backend.js';
import type { EmulatedRepo, GitHubEmulator } from '../../src/local/github-emulator.js';
import type { PromotionPolicy } from '../../src/manifest/types.js';
import { git, tempDir } from './artifacts.js';
import { startValidatedGitHubEmulator, type GitHubResponseValidator } from './github.js';

// The http-backend server runs in this process: clones against it must not block the event loop.
const gitAsync = promisify(execFile);

export interface PrRemote {
  /** The remote's clone URL. */
  url: string;
  /** A clone with a committer identity, to run the CLI in. */
  work: string;
  gh: GitHubEmulator & { validator: GitHubResponseValidator };
  ghRepo: EmulatedRepo;
  /** GITHUB_TOKEN and GITHUB_API_URL for the emulator. */
  env: Record<string, string>;
  /** Branch names on the remote. */
  branches(): Promise<string[]>;
  close(): Promise<void>;
}

export async function prRemote(storage: Record<string, unknown>, policy: PromotionPolicy, more: Record<string, string> = {}): Promise<PrRemote> {
  const seed = tempDir('mg-seed-');
  git(seed, 'init', '-q', '-b', 'main');
  const files: Record<string, string> = {
    'modelgate.yaml': stringify({ apiVersion: 'modelgate.dev/v1', kind: 'Registry', storage, github: { repository: 'acme/model-registry' } }),
    'policies/promotion.yaml': stringify(policy),
    ...more,
  };
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(join(seed, p, '..'), { recursive: true });
    writeFileSync(join(seed, p), text);
  }
  git(seed, 'add', '-A');
  git(seed, '-c', 'user.name=maria', '-c', 'user.email=maria@example.com', 'commit', '-q', '-m', 'registry');
  const root = tempDir('mg-remote-');
  execFileSync('git', ['clone', '-q', '--bare', seed, join(root, 'registry.git')]);
  const server = await serveGitHttp(root);
  const url = `${server.url}/registry.git`;
  const work = tempDir('mg-pr-');
  await gitAsync('git', ['clone', '-q', url, work]);
  git(work, 'config', 'user.name', 'maria');
  git(work, 'config', 'user.email', 'maria@example.com');
  const gh = await startValidatedGitHubEmulator();
  gh.addUser('maria');
  const ghRepo = gh.addRepo('acme', 'model-registry', { gitDir: join(root, 'registry.git') });
  return {
    url,
    work,
    gh,
    ghRepo,
    env: { GITHUB_TOKEN: 'token-maria', GITHUB_API_URL: gh.url },
    branches: async () =>
      (await gitAsync('git', ['ls-remote', '--heads', url])).stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('\trefs/heads/')[1]!)
        .sort(),
    close: async () => {
      await server.close();
      await gh.close();
    },
  };
}
