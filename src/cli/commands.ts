/**
 * One declaration per command: its summary, its positionals and every flag it accepts, each with
 * a one-line description. The parser (parseCommandArgs), `--help`, the usage line in errors and
 * docs/reference.md are all derived from it, so they cannot disagree. No command is imported here
 * (src/cli/main.ts loads a command only when it runs).
 */

export interface FlagSpec {
  type: 'string' | 'boolean';
  /** The flag may be given more than once; every value is kept. */
  multiple?: boolean;
  short?: string;
  /** What the value looks like in the usage line (`<seconds>`); string flags only. */
  value?: string;
  description: string;
}

export interface CommandSpec {
  summary: string;
  /** The positionals as the usage line shows them: `<model> <file-or-dir>`. */
  args: string;
  flags: Record<string, FlagSpec>;
}

const CHANGE = {
  pr: { type: 'boolean', description: 'push a branch and open a pull request (needs GITHUB_TOKEN)' },
  push: { type: 'boolean', description: 'commit and push to main (for registries without review)' },
  'dry-run': { type: 'boolean', description: 'print the change and touch nothing' },
} as const;

export const COMMAND_SPECS = {
  init: {
    summary: 'create a registry from the template',
    args: '<dir>',
    flags: {
      store: { type: 'string', value: 's3://bucket/prefix|file://path', description: 'artifact store recorded as storage.uri' },
      github: { type: 'string', value: 'owner/repo', description: 'GitHub repository: github.repository, CODEOWNERS and Argo CD repoURL' },
      example: { type: 'boolean', description: 'add the example model fraud-detector, its two ONNX artifacts written into the store' },
    },
  },
  validate: { summary: 'check schemas and registry rules', args: '[path…]', flags: {} },
  scan: {
    summary: "scan files for pickles that import anything outside the gate's allowed globals",
    args: '<path…>',
    flags: {
      allow: {
        type: 'string',
        multiple: true,
        value: 'module.name',
        description: 'also allow this global (as policy scan.allowGlobals; module.* for a package)',
      },
      format: { type: 'string', value: 'format', description: "a single file's declared format, checked against its bytes (onnx, safetensors, joblib, …)" },
    },
  },
  register: {
    summary: 'upload an artifact and record a new version',
    args: '<model> <file-or-dir>',
    flags: {
      metrics: {
        type: 'string',
        multiple: true,
        value: 'file.json|k=v',
        description: 'metrics: a JSON or YAML file (nested keys become eval.auc) or k=v pairs',
      },
      metric: { type: 'string', multiple: true, value: 'k=v', description: 'one metric' },
      params: {
        type: 'string',
        multiple: true,
        value: 'file.json|k=v',
        description: 'parameters: a JSON or YAML file (DVC params.yaml) or k=v pairs, kept as text',
      },
      param: { type: 'string', multiple: true, value: 'k=v', description: 'one parameter' },
      stage: { type: 'string', value: 'None|Staging', description: 'initial stage (default None)' },
      description: { type: 'string', value: 'text', description: 'what this version is' },
      format: { type: 'string', value: 'format', description: 'artifact format, when detection is wrong' },
      framework: { type: 'string', value: 'name==version', description: "framework that produced the model (default: an MLflow folder's flavor)" },
      code: { type: 'string', value: 'auto|<repo>@<commit>', description: 'code lineage; auto reads the working directory' },
      dataset: { type: 'string', multiple: true, value: 'id=…,uri=…[,path=file]', description: 'a dataset used for training' },
      run: {
        type: 'string',
        value: 'id=…[,url=…][,system=…]',
        description: "the run that produced it (default: an MLflow folder's run_id, else GitHub Actions / GitLab CI)",
      },
      env: { type: 'string', value: 'python=…[,requirements=…][,image=…]', description: "the training environment (added to an MLflow folder's)" },
      signature: {
        type: 'string',
        value: 'file.json',
        description: "MLflow signature {inputs, outputs, params} as JSON (default: an MLflow folder's MLmodel)",
      },
      annotation: { type: 'string', multiple: true, value: 'k=v', description: 'an annotation set at registration' },
      push: CHANGE.push,
      pr: CHANGE.pr,
      'dry-run': { type: 'boolean', description: 'print the version that would be recorded; upload and commit nothing' },
    },
  },
  promote: {
    summary: "change a version's stage",
    args: '<model>@<version|latest>',
    flags: { to: { type: 'string', value: 'Stage', description: 'target stage: None, Staging, Production or Archived' }, ...CHANGE },
  },
  rollback: {
    summary: 'put a former Production version back, or an alias back on a former target',
    args: '<model>',
    flags: {
      to: { type: 'string', value: 'version', description: 'the former Production version, or former target of --alias (default: the one before)' },
      alias: { type: 'string', value: 'alias', description: 'roll back this alias instead of Production, to a version it pointed at before' },
      ...CHANGE,
    },
  },
  archive: { summary: 'move a version to Archived', args: '<model>@<version|latest>', flags: { ...CHANGE } },
  annotate: { summary: 'set annotations on a version', args: '<ref> key=value…', flags: { ...CHANGE } },
  alias: {
    summary: 'set, move, delete or list aliases such as champion and challenger',
    args: 'set <model>@<version> <alias> | delete <model> <alias> | list [<model>]',
    flags: { ...CHANGE },
  },
  list: {
    summary: 'list versions',
    args: '',
    flags: {
      model: { type: 'string', value: 'model', description: 'only this model' },
      stage: { type: 'string', value: 'Stage', description: 'only versions in this stage' },
      where: { type: 'string', value: 'expr', description: 'filter, e.g. "metrics.auc > 0.9 and stage = Staging"' },
    },
  },
  show: { summary: 'show one version', args: '<ref>', flags: { at: { type: 'string', value: 'date-or-commit', description: 'the registry as it was then' } } },
  history: { summary: 'every stage change, from git history', args: '<model>', flags: {} },
  diff: { summary: 'compare two versions', args: '<ref> <ref>', flags: {} },
  pages: { summary: 'write the registry pages as a static site', args: '<out-dir>', flags: {} },
  resolve: {
    summary: 'uri, sha256 and size for serving',
    args: '<ref>',
    flags: { presign: { type: 'string', value: 'seconds', description: 'add a presigned https URL valid this long (S3 stores)' } },
  },
  pull: {
    summary: "download and verify a version's artifact, or a content-addressed URI into a folder",
    args: '<ref> | <content-addressed-uri> <dest>',
    flags: {
      output: { type: 'string', short: 'o', value: 'path', description: "where to write the version's artifact (required with <ref>)" },
      force: { type: 'boolean', description: 'replace what is at the output path' },
    },
  },
  verify: {
    summary: 'check artifacts in the store',
    args: '[ref…]',
    flags: {
      full: { type: 'boolean', description: 'download and hash every byte, not only sizes and digests' },
      decisions: {
        type: 'boolean',
        description: 'check that a validly signed decision record proves the exact change that put each Staging and Production version in its stage',
      },
    },
  },
  gc: {
    summary: 'remove what failed or cancelled uploads left in the store',
    args: '',
    flags: {
      'dry-run': { type: 'boolean', description: 'print what would be removed, remove nothing' },
      'older-than': { type: 'string', value: 'duration', description: 'only what is older than this (default 24h)' },
      unreferenced: { type: 'boolean', description: 'also remove artifacts no manifest in any commit of any branch or pull request references' },
    },
  },
  check: {
    summary: 'run the promotion gate locally',
    args: '',
    flags: {
      base: { type: 'string', value: 'rev', description: 'revision whose policy applies (required)' },
      head: { type: 'string', value: 'rev', description: 'revision with the proposed change (required)' },
      'no-approvals': { type: 'boolean', description: 'skip approval rules (a pre-push check)' },
      pr: { type: 'string', value: 'number', description: 'read approvals from this GitHub pull request' },
    },
  },
  import: {
    summary:
      'move an MLflow or GTO registry in: versions, stages, aliases and their history, one commit each; mlflow --pr puts them on one branch with one pull request',
    args: 'gto <repo> | mlflow',
    flags: {
      'tracking-uri': {
        type: 'string',
        value: 'url',
        description: 'mlflow: the MLflow tracking server (default MLFLOW_TRACKING_URI); its artifact proxy, s3:// or local paths give the bytes',
      },
      model: { type: 'string', multiple: true, value: 'name', description: 'mlflow: import this registered model only (repeatable; default every one)' },
      'dry-run': { type: 'boolean', description: 'mlflow: print what would be imported and touch nothing' },
      batch: {
        type: 'string',
        value: 'n',
        description: 'mlflow: versions committed locally before each push (default 100); a killed run loses at most one batch',
      },
      stages: {
        type: 'string',
        value: 'prod=Production,dev=Staging',
        description: 'GTO stage to modelgate stage (default prod/production → Production, stage/staging → Staging); others become aliases',
      },
      push: CHANGE.push,
      pr: {
        type: 'boolean',
        description:
          'mlflow: every commit on the one branch modelgate/import/mlflow and one pull request into main (needs GITHUB_TOKEN); a re-run continues it while it is open',
      },
    },
  },
  sync: {
    summary: 'write the deploy pins for every environment',
    args: '',
    flags: {
      check: { type: 'boolean', description: 'exit 1 with the diff when the pins are out of date' },
      'dry-run': { type: 'boolean', description: 'print what would be written' },
      push: { type: 'boolean', description: 'commit the pins on the remote branch head and push' },
      pr: { type: 'boolean', description: 'open or update the one repair pull request (modelgate/sync)' },
      renumber: {
        type: 'boolean',
        description: "re-number the open registration pull requests whose number the remote branch took first (what the Action's sync job does on each push)",
      },
      'registry-ref': { type: 'string', value: 'rev', description: 'derive the pins from this revision' },
      remote: { type: 'string', value: 'name', description: 'remote for --push, --pr or --renumber (default origin)' },
      branch: { type: 'string', value: 'name', description: 'branch for --push, --pr or --renumber (default main)' },
    },
  },
  serve: {
    summary: 'serve the registry over HTTP: the MLflow Model Registry API, artifacts, health and metrics',
    args: '',
    flags: {
      listen: { type: 'string', value: 'host:port', description: 'address to listen on (default 127.0.0.1:8080; 0.0.0.0:8080 in a container)' },
      refresh: { type: 'string', value: 'seconds', description: "how often the registry branch's head is read again (default 10)" },
      tokens: { type: 'string', value: 'file', description: 'bearer tokens, one "<identity> <token>" per line' },
      writes: {
        type: 'string',
        value: 'pr|push|commit',
        description: 'how MLflow writes (alias, stage, tag) land: a pull request (default), a push to the registry branch, or a local commit',
      },
      'private-reads': { type: 'boolean', description: 'reads need a token too (default: reads are open)' },
      'mlflow-tracking-uri': {
        type: 'string',
        value: 'url',
        description: 'the MLflow tracking server whose runs and artifacts registrations (create_model_version) read (default MLFLOW_TRACKING_URI)',
      },
      'rate-limit': { type: 'string', value: 'n', description: 'requests per minute from one client to /api (default 600; 0: no limit)' },
    },
  },
} as const satisfies Record<string, CommandSpec>;

export type CommandName = keyof typeof COMMAND_SPECS;

function flagTerm(name: string, f: FlagSpec): string {
  const long = `--${name}${f.type === 'string' ? ` <${f.value ?? 'value'}>` : ''}`;
  return f.short ? `-${f.short}, ${long}` : long;
}

/** `register <model> <file-or-dir> [flags]`: the usage line shown in errors and help. */
export function usageOf(name: CommandName): string {
  const spec: CommandSpec = COMMAND_SPECS[name];
  return [name, spec.args, Object.keys(spec.flags).length ? '[flags]' : ''].filter(Boolean).join(' ');
}

/** Every flag of a command as `[term, description]`, in declaration order. */
function flagLines(name: CommandName): Array<[string, string]> {
  const spec: CommandSpec = COMMAND_SPECS[name];
  return Object.entries(spec.flags).map(([flag, f]) => [flagTerm(flag, f), f.multiple ? `${f.description} (repeatable)` : f.description]);
}

/** What `modelgate <command> --help` prints. */
export function commandHelp(name: CommandName): string {
  const spec: CommandSpec = COMMAND_SPECS[name];
  const lines = [`usage: modelgate ${usageOf(name)}`, '', spec.summary];
  const flags = flagLines(name);
  if (flags.length) {
    const width = Math.max(...flags.map(([t]) => t.length));
    lines.push('', 'flags:', ...flags.map(([t, d]) => `  ${t.padEnd(width)}  ${d}`));
  }
  return lines.join('\n') + '\n';
}
