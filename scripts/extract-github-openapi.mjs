#!/usr/bin/env node
// Extracts, from GitHub's official OpenAPI description (@octokit/openapi, api.github.com),
// the response schemas of the operations the GitHub emulator serves, into a small
// self-contained OpenAPI document: test/fixtures/github/openapi-subset.json.
// Only `#/components/schemas/*` refs are kept (with every schema they reach); response
// refs are inlined and examples are dropped. Run: node scripts/extract-github-openapi.mjs
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The operations the emulator implements, as [method, OpenAPI path]. */
export const OPERATIONS = [
  ['get', '/repos/{owner}/{repo}/pulls'],
  ['post', '/repos/{owner}/{repo}/pulls'],
  ['get', '/repos/{owner}/{repo}/pulls/{pull_number}'],
  ['patch', '/repos/{owner}/{repo}/pulls/{pull_number}'],
  ['get', '/repos/{owner}/{repo}/pulls/{pull_number}/files'],
  ['get', '/repos/{owner}/{repo}/pulls/{pull_number}/commits'],
  ['get', '/repos/{owner}/{repo}/pulls/{pull_number}/reviews'],
  ['post', '/repos/{owner}/{repo}/pulls/{pull_number}/reviews'],
  ['put', '/repos/{owner}/{repo}/pulls/{pull_number}/merge'],
  ['get', '/orgs/{org}/teams/{team_slug}/memberships/{username}'],
  ['post', '/repos/{owner}/{repo}/statuses/{sha}'],
  ['get', '/repos/{owner}/{repo}/commits/{ref}/status'],
  ['get', '/repos/{owner}/{repo}/issues/{issue_number}/comments'],
  ['post', '/repos/{owner}/{repo}/issues/{issue_number}/comments'],
  ['patch', '/repos/{owner}/{repo}/issues/comments/{comment_id}'],
];

/** Error bodies of statuses an operation does not declare are checked against these. */
const EXTRA_SCHEMAS = ['basic-error', 'validation-error', 'validation-error-simple'];

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const specPath = require.resolve('@octokit/openapi/generated/api.github.com.json');
const spec = JSON.parse(readFileSync(specPath, 'utf8'));
const { version } = JSON.parse(readFileSync(join(dirname(specPath), '..', 'package.json'), 'utf8'));

function pointer(ref) {
  if (!ref.startsWith('#/')) throw new Error(`external $ref not supported: ${ref}`);
  return ref
    .slice(2)
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((node, key) => {
      if (node?.[key] === undefined) throw new Error(`unresolved $ref ${ref}`);
      return node[key];
    }, spec);
}

const schemaNames = new Set();
/** Copies `node`, inlining every non-schema $ref and collecting the schema refs it reaches. */
function copy(node) {
  if (Array.isArray(node)) return node.map(copy);
  if (node === null || typeof node !== 'object') return node;
  if (typeof node.$ref === 'string') {
    const m = /^#\/components\/schemas\/(.+)$/.exec(node.$ref);
    if (m) {
      collectSchema(m[1]);
      return { $ref: node.$ref };
    }
    return copy(pointer(node.$ref));
  }
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'examples' || k === 'example') continue;
    out[k] = copy(v);
  }
  // OpenAPI 3.0's `nullable` without a `type` (a nullable oneOf, e.g. a commit's author): ajv
  // knows `nullable` only next to `type`, so say it the JSON Schema way.
  if (out.nullable === true && out.type === undefined) {
    const { nullable: _, ...rest } = out;
    return { anyOf: [{ type: 'null' }, rest] };
  }
  return out;
}
const schemas = {};
function collectSchema(name) {
  if (schemaNames.has(name)) return;
  schemaNames.add(name);
  schemas[name] = copy(spec.components.schemas[name]);
}

const paths = {};
for (const [method, path] of OPERATIONS) {
  const op = spec.paths[path]?.[method];
  if (!op) throw new Error(`${method.toUpperCase()} ${path} is not in the description`);
  const responses = {};
  for (const [status, response] of Object.entries(op.responses)) {
    const r = copy(response);
    responses[status] = { description: r.description, ...(r.content ? { content: r.content } : {}), ...(r.headers ? { headers: r.headers } : {}) };
  }
  (paths[path] ??= {})[method] = { operationId: op.operationId, summary: op.summary, responses };
}
for (const name of EXTRA_SCHEMAS) collectSchema(name);

const sorted = Object.fromEntries(
  Object.keys(schemas)
    .sort()
    .map((k) => [k, schemas[k]]),
);
const doc = {
  openapi: spec.openapi,
  info: {
    title: `${spec.info.title} (subset used by modelgate's GitHub emulator)`,
    version: spec.info.version,
    'x-source': `@octokit/openapi@${version} generated/api.github.com.json`,
    'x-generated-by': 'scripts/extract-github-openapi.mjs',
  },
  paths,
  components: { schemas: sorted },
};
const out = join(root, 'test/fixtures/github/openapi-subset.json');
writeFileSync(out, JSON.stringify(doc, null, 1) + '\n');
console.log(`wrote ${out}: ${OPERATIONS.length} operations, ${Object.keys(sorted).length} schemas`);
