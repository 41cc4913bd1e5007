import { ExitCode, ModelgateError, usageError } from '../errors.js';
import type { Lineage, Signature } from '../manifest/types.js';
import { parseSignature } from './mlflow.js';

/** `a=1,b=2` with only the keys listed, each at most once; `required` must be there. */
function keyValues(flag: string, text: string, keys: readonly string[], required: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const expected = `expected ${keys.map((k) => `${k}=…`).join(',')}`;
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    const k = part.slice(0, eq).trim();
    if (eq <= 0 || !keys.includes(k)) throw usageError(`${flag} ${JSON.stringify(text)}: unknown part ${JSON.stringify(part)}; ${expected}`);
    if (k in out) throw usageError(`${flag} ${JSON.stringify(text)}: ${k}= is given twice`);
    const v = part.slice(eq + 1).trim();
    if (!v) throw usageError(`${flag} ${JSON.stringify(text)}: ${k}= is empty`);
    out[k] = v;
  }
  for (const k of required) if (!(k in out)) throw usageError(`${flag} ${JSON.stringify(text)}: ${k}=… is required`);
  return out;
}

/** `--run id=…[,url=…][,system=…]`: the run that produced the version, for pipelines outside GitHub Actions and GitLab CI. */
export function parseRunSpec(text: string): NonNullable<Lineage['run']> {
  const r = keyValues('--run', text, ['id', 'url', 'system'], ['id']);
  if (r.url !== undefined && !/^https?:\/\/\S+$/.test(r.url)) throw usageError(`--run url=${r.url}: expected an http(s) URL`);
  return r;
}

/** `--env python=…[,requirements=…][,image=…][,node=…]`: the training environment. */
export function parseEnvSpec(text: string): NonNullable<Lineage['environment']> {
  return keyValues('--env', text, ['python', 'requirements', 'image', 'node'], []);
}

const ANNOTATION_KEY = /^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?\/)?[a-z0-9]([a-z0-9_.-]{0,61}[a-z0-9])?$/;

/** `--annotation k=v` (repeatable): annotations set at registration. A key given twice is refused. */
export function parseAnnotations(args: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const arg of args) {
    const eq = arg.indexOf('=');
    const k = arg.slice(0, eq);
    if (eq <= 0 || !ANNOTATION_KEY.test(k))
      throw usageError(`--annotation ${JSON.stringify(arg)}: expected key=value, the key like a Kubernetes label (team, example.com/owner)`);
    if (Object.hasOwn(out, k)) throw usageError(`--annotation ${k}: given twice`);
    out[k] = arg.slice(eq + 1);
  }
  return out;
}

/**
 * `--signature file.json`: MLflow's signature, `{"inputs": …, "outputs": …, "params": …}`, each
 * list either decoded or as MLflow's JSON text (what MLmodel's `signature` holds and
 * `ModelSignature.to_dict()` returns). Checked as MLflow reads it; the same shape `register`
 * reads from an MLflow folder's MLmodel.
 */
export function parseSignatureFile(path: string, text: string): Signature {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ModelgateError('E_JSON', `--signature ${path}: not valid JSON (${(e as Error).message})`, ExitCode.content);
  }
  const signature = parseSignature(
    value,
    (_part, message) => new ModelgateError('E_SIGNATURE', `--signature ${path}: ${message}`, ExitCode.content, { file: path }),
  );
  if (!signature) throw new ModelgateError('E_SIGNATURE', `--signature ${path}: no inputs, outputs or params`, ExitCode.content, { file: path });
  return signature;
}
