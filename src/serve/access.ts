import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { ExitCode, ModelgateError, usageError } from '../errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who sent the request, from its bearer token; undefined for an anonymous one. */
    identity?: string;
  }
}

/** Bearer tokens and the identities they stand for; tokens are kept as their sha256 only. */
export class TokenTable {
  private constructor(private readonly byDigest: ReadonlyMap<string, string>) {}

  static empty(): TokenTable {
    return new TokenTable(new Map());
  }

  /**
   * `--tokens <file>`: one `<identity> <token>` per line; blank lines and `#` comments are
   * skipped. A malformed line or a token given twice is a usage error naming the line, never the token.
   */
  static async fromFile(path: string): Promise<TokenTable> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      throw usageError(`--tokens ${path}: cannot read it (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    return TokenTable.parse(text, path);
  }

  static parse(text: string, where: string): TokenTable {
    const map = new Map<string, string>();
    for (const [i, line] of text.split(/\r?\n/).entries()) {
      const trimmed = line.trim();
      if (trimmed === '' || trimmed.startsWith('#')) continue;
      const parts = trimmed.split(/\s+/);
      if (parts.length !== 2 || !/^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$/.test(parts[0]!) || parts[1]!.length < 16) {
        throw usageError(
          `--tokens ${where}:${i + 1}: expected "<identity> <token>" (an identity of letters, digits, ._@-, and a token of 16 or more characters)`,
        );
      }
      const digest = sha256(parts[1]!);
      if (map.has(digest)) throw usageError(`--tokens ${where}:${i + 1}: this token is already given to another line`);
      map.set(digest, parts[0]!);
    }
    return new TokenTable(map);
  }

  get size(): number {
    return this.byDigest.size;
  }

  /** The identity a token stands for; compared as digests, in constant time. */
  identify(token: string): string | undefined {
    const digest = sha256(token);
    for (const [known, identity] of this.byDigest) {
      if (timingSafeEqual(Buffer.from(known, 'hex'), Buffer.from(digest, 'hex'))) return identity;
    }
    return undefined;
  }
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** What a caller without a valid token is told (HTTP 401); the answer's shape is the route family's. */
function unauthenticated(message: string): ModelgateError {
  return new ModelgateError('E_UNAUTHENTICATED', message, ExitCode.usage);
}

/** Who `Authorization: Bearer <token>` names, or undefined when the header is malformed or the token unknown. */
export function bearerIdentity(header: string, tokens: TokenTable): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? tokens.identify(m[1]!) : undefined;
}

/**
 * Sets `request.identity` from `Authorization: Bearer <token>` (what MLflow's client sends for
 * MLFLOW_TRACKING_TOKEN). A token that is not in the table is refused (401) whatever the
 * route; with `privateReads`, so is a request without one.
 */
export function installAccess(app: FastifyInstance, tokens: TokenTable, options: { privateReads: boolean }): void {
  app.addHook('onRequest', async (request) => {
    if (!request.url.startsWith('/api/')) return;
    const header = request.headers.authorization;
    if (header !== undefined) {
      const identity = bearerIdentity(header, tokens);
      if (!identity) throw unauthenticated('the bearer token is not valid for this server');
      request.identity = identity;
    } else if (options.privateReads) {
      throw unauthenticated('this server needs a bearer token (Authorization: Bearer <token>)');
    }
  });
}
