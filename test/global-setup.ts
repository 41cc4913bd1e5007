import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Starts the two loopback S3 servers the store tests run against — OpenStack Swift with s3api
 * (scripts/s3-server.sh) and Ceph RGW on a one-node cluster (scripts/ceph-rgw.sh) — installing
 * them first on a fresh machine, and installs the Python libraries that write the pickle-scan
 * corpus (scripts/pickle-corpus.sh). `npm test` asks for them (MODELGATE_TEST_SERVICES=1): a server
 * that cannot be started fails the run here, nothing is skipped. A single test file run by hand
 * uses the servers already running.
 */
export default function setup(): () => void {
  if (process.env.MODELGATE_TEST_SERVICES) {
    // One after the other: all three install with apt-get, which holds one lock. The pickle-scan
    // corpus needs Debian's PyTorch, scikit-learn, joblib and NumPy (test/scan-corpus.test.ts).
    execFileSync('bash', ['scripts/pickle-corpus.sh', 'install'], { stdio: 'inherit' });
    for (const script of ['scripts/s3-server.sh', 'scripts/ceph-rgw.sh']) {
      execFileSync('bash', [script, 'install'], { stdio: 'inherit' });
      execFileSync('bash', [script, 'start'], { stdio: 'inherit' });
    }
    // Debian's Chromium, which test/pages.test.ts drives with playwright-core.
    execFileSync('bash', ['scripts/chromium.sh', 'install'], { stdio: 'inherit' });
  }
  // Every temporary folder of the run (the tests', the CLI's, git's) goes under one folder that
  // is removed at the end: gigabyte artifacts and 200,000-file registries never pile up in /tmp.
  // Set after the servers start, so their data stays where the scripts keep it; the workers are
  // forked after this and inherit it.
  const run = mkdtempSync(join(tmpdir(), 'modelgate-test-run-'));
  process.env.TMPDIR = run;
  // No git of the run starts a detached `git gc --auto` (a commit of a 200,000-file registry
  // does): one still writing into a test's folder when the run ends would outlive the removal.
  Object.assign(process.env, {
    GIT_CONFIG_COUNT: '2',
    GIT_CONFIG_KEY_0: 'gc.auto',
    GIT_CONFIG_VALUE_0: '0',
    GIT_CONFIG_KEY_1: 'maintenance.auto',
    GIT_CONFIG_VALUE_1: 'false',
  });
  // In the main process after every worker ended: no test's own removal can race with it.
  return () => rmSync(run, { recursive: true, force: true });
}
