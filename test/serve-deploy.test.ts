// The template's deployment of `modelgate serve` (registry-template/cluster/serve and
// argocd/serve.yaml): rendered by the real `kubectl kustomize`, validated against the core
// Kubernetes schemas (kubernetes-models) and Argo CD's CRD, and pointed at the registry by init.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Namespace, Service } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { crdValidator } from './helpers/crd.js';
import { cli, tempDir } from './helpers/artifacts.js';

const TEMPLATE = join(import.meta.dirname, '..', 'registry-template');
const KUBECTL = process.env.KUBECTL ?? 'kubectl';

function kustomize(dir: string): Array<Record<string, any>> {
  return parseAllDocuments(execFileSync(KUBECTL, ['kustomize', dir], { encoding: 'utf8' })).map((d) => d.toJS());
}

describe("the template's modelgate serve", () => {
  it('renders a valid Namespace, Deployment and Service, probed on /healthz and /readyz', () => {
    const docs = kustomize(join(TEMPLATE, 'cluster/serve'));
    expect(docs.map((d) => d.kind).sort()).toEqual(['Deployment', 'Namespace', 'Service']);
    const byKind = Object.fromEntries(docs.map((d) => [d.kind, d]));
    new Namespace(byKind.Namespace).validate();
    new Deployment(byKind.Deployment).validate();
    new Service(byKind.Service).validate();
    const deployment = byKind.Deployment!;
    expect(deployment.metadata.namespace).toBe('modelgate');
    const container = deployment.spec.template.spec.containers[0];
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    expect(container.args).toEqual(['--registry', 'https://github.com/acme/model-registry.git', '--refresh', '30', '--tokens', '/etc/modelgate/tokens']);
    expect(container.securityContext.readOnlyRootFilesystem).toBe(true);
    // The Service reaches the pods the Deployment makes.
    expect(deployment.spec.template.metadata.labels).toMatchObject(byKind.Service!.spec.selector);
  });

  it('argocd/serve.yaml is a valid Application syncing cluster/serve', () => {
    const app = parse(readFileSync(join(TEMPLATE, 'argocd/serve.yaml'), 'utf8'));
    const validate = crdValidator('argocd-application.yaml', 'v1alpha1');
    expect(validate(app), JSON.stringify(validate.errors)).toBe(true);
    expect(app.spec.source.path).toBe('cluster/serve');
    expect(app.spec.destination.namespace).toBe('modelgate');
  });

  it('init --github points the Deployment and the Application at the new repository', async () => {
    const tmp = tempDir('mg-serve-init-');
    expect((await cli(tmp, ['init', 'reg', '--github', 'globex/models'])).code).toBe(0);
    const deployment = readFileSync(join(tmp, 'reg/cluster/serve/deployment.yaml'), 'utf8');
    expect(deployment).toContain('- https://github.com/globex/models.git\n');
    expect(readFileSync(join(tmp, 'reg/argocd/serve.yaml'), 'utf8')).toContain('repoURL: https://github.com/globex/models.git\n');
  });
});
