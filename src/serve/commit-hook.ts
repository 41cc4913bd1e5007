import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServedCommit, ServedRegistry } from './served-registry.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The commit this request is answered from (API routes only). */
    served?: ServedCommit;
  }
}

/** Paths answered from a commit of the registry; the operations endpoints are not. */
const API = /^\/api\//;

/**
 * Every API request takes the served commit once, before its handler runs, and names it in
 * `X-Modelgate-Commit`: whatever a refresh does meanwhile, one answer comes from one commit.
 */
export function installCommitHook(app: FastifyInstance, registry: ServedRegistry): void {
  app.addHook('onRequest', async (request, reply) => {
    if (!API.test(request.url)) return;
    const served = await registry.current();
    // The commit's snapshot is shared by its requests: its tree listings and version numbers
    // (its index) and its most recently read documents (a bounded cache); memory never grows
    // to every manifest held.
    request.served = served;
    reply.header('x-modelgate-commit', served.commit);
  });
}

/** The request's commit; only API routes are registered under the hook that sets it. */
export function commitOf(request: FastifyRequest): ServedCommit {
  if (!request.served) throw new Error(`no commit for ${request.url}: not an API route`);
  return request.served;
}
