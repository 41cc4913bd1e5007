import { execFileSync } from 'node:child_process';

/**
 * Starts the loopback S3 server (OpenStack Swift with s3api) the store tests talk to, installing
 * it first on a fresh machine. `npm test` asks for it; a single test file run by hand uses the
 * server already running.
 */
export default function setup(): void {
  if (process.env.MODELGATE_TEST_SERVICES) {
    execFileSync('bash', ['scripts/s3-server.sh', 'install'], { stdio: 'inherit' });
    execFileSync('bash', ['scripts/s3-server.sh', 'start'], { stdio: 'inherit' });
  }
}
