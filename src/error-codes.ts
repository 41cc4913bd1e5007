import { ExitCode } from './errors.js';

/** What one stable error code means: the exit codes it is raised with and a line for the catalog. */
export interface ErrorCodeInfo {
  /** Where the code comes from: `problem` codes are findings in a `validate`/`check` report (exit 1), the rest are thrown. */
  area: ErrorArea;
  /** Every exit code the code is raised with (SPEC §4); a problem code exits 1 through the command reporting it. */
  exit: readonly ExitCode[];
  /** One sentence for docs/reference.md: what went wrong, in the reader's terms. */
  summary: string;
}

export type ErrorArea =
  'command line' | 'manifest' | 'registry' | 'lineage' | 'store' | 'S3' | 'git' | 'GitHub' | 'gate' | 'deploy' | 'promotion' | 'evidence' | 'serve' | 'MLflow';

const { content, usage, service } = ExitCode;

/**
 * Every stable `E_` code modelgate reports, thrown as a ModelgateError or listed as a Problem.
 * The one declaration: ModelgateError and Problem take `ErrorCode`, so tsc refuses a code that is
 * not here; test/error-codes.test.ts refuses one listed here that src/ never uses; the catalog in
 * docs/reference.md is rendered from it (`npm run docs`).
 */
export const ERROR_CODES = {
  // The command line.
  E_USAGE: { area: 'command line', exit: [usage], summary: 'The command line is wrong: an unknown flag, a missing argument, a value out of range.' },
  E_TARGET_EXISTS: { area: 'command line', exit: [usage], summary: '`init` was pointed at a path that exists and is not a folder.' },
  E_TARGET_NOT_EMPTY: { area: 'command line', exit: [usage], summary: '`init` was pointed at a folder that is not empty.' },
  E_OUTPUT_EXISTS: { area: 'command line', exit: [usage], summary: '`pull --output` names a path that exists; `--force` replaces it.' },
  E_BARE_MODEL_REF: {
    area: 'command line',
    exit: [usage],
    summary: 'A bare model name where one version is acted on; write `<model>@<N>`, `<model>@latest` or `<model>@<stage>`.',
  },
  E_WHERE_SYNTAX: { area: 'command line', exit: [usage], summary: 'A `--where` filter does not parse; the message points at the column.' },
  E_PRESIGN_DIRECTORY: {
    area: 'command line',
    exit: [usage],
    summary: '`resolve --presign` was asked for a directory artifact; presigned URLs are per object.',
  },
  E_PRESIGN_UNSUPPORTED: { area: 'command line', exit: [usage], summary: '`resolve --presign` on a registry whose store is not S3.' },
  E_NO_GITHUB: {
    area: 'command line',
    exit: [usage, content],
    summary: 'The command needs GitHub (a pull request number, or github.repository in modelgate.yaml) and has none.',
  },

  // Findings in one manifest (Problem codes, reported by validate, check and every command that reads a manifest).
  E_EMPTY: { area: 'manifest', exit: [content], summary: 'The manifest file is empty.' },
  E_TOO_LARGE: {
    area: 'manifest',
    exit: [content],
    summary: 'A manifest, or a metrics or parameters file, is larger than such a file may be; read as hostile input.',
  },
  E_ENCODING: {
    area: 'manifest',
    exit: [content],
    summary: 'A manifest, or a metrics or parameters file, holds bytes that are not UTF-8 or a character YAML forbids (NUL, other control characters).',
  },
  E_UNSAFE_INTEGER: {
    area: 'manifest',
    exit: [content],
    summary: 'An integer beyond 2^53 (9007199254740991), which JSON numbers cannot keep exactly; write it as a string.',
  },
  E_TOO_DEEP: { area: 'manifest', exit: [content], summary: 'The manifest nests deeper than a manifest may; read as hostile input.' },
  E_YAML_SYNTAX: { area: 'manifest', exit: [content], summary: 'The file is not valid YAML.' },
  E_YAML_DIRECTIVE: { area: 'manifest', exit: [content], summary: 'A `%YAML` directive other than 1.2.' },
  E_YAML_MULTI_DOC: { area: 'manifest', exit: [content], summary: 'More than one YAML document in one manifest.' },
  E_YAML_DUPLICATE_KEY: { area: 'manifest', exit: [content], summary: 'A key appears twice in one mapping.' },
  E_YAML_KEY: { area: 'manifest', exit: [content], summary: 'A mapping key that is not a plain string.' },
  E_YAML_ALIAS: { area: 'manifest', exit: [content], summary: 'A YAML anchor or alias; manifests write values out.' },
  E_YAML_TAG: { area: 'manifest', exit: [content], summary: 'An explicit YAML tag such as `!!str`.' },
  E_FORBIDDEN_KEY: {
    area: 'manifest',
    exit: [content],
    summary: 'A key such as `__proto__`, `constructor` or `prototype` that is never allowed, in a manifest or a metrics or parameters file.',
  },
  E_NON_FINITE: { area: 'manifest', exit: [content], summary: 'A number that is `.inf` or `.nan`.' },
  E_SCHEMA: { area: 'manifest', exit: [content], summary: 'A field breaks the JSON Schema of its kind: wrong type, missing, not one of the allowed values.' },
  E_UNKNOWN_FIELD: { area: 'manifest', exit: [content], summary: 'A field the schema does not define (a typo, usually; the message suggests the near one).' },
  E_PATH_MISMATCH: { area: 'manifest', exit: [content], summary: "A manifest's model, version or name disagrees with the path of its file." },
  E_POLICY_RULE: { area: 'manifest', exit: [content], summary: 'A promotion policy rule that can never apply or never pass.' },
  E_ARTIFACT_URI: { area: 'manifest', exit: [content], summary: "artifact.uri is outside the registry's store or not at its content-addressed place." },
  E_ARTIFACT_FILES: {
    area: 'manifest',
    exit: [content],
    summary: 'artifact.files does not add up: a path twice, a bad path, or a size or digest that disagrees.',
  },
  E_INVALID: { area: 'manifest', exit: [content], summary: 'The gate read a manifest that did not load, with no more precise finding.' },

  // Findings across a registry, and reading one.
  E_MISSING_FILE: { area: 'registry', exit: [content], summary: 'The registry has no modelgate.yaml.' },
  E_MISSING_MODEL: { area: 'registry', exit: [content], summary: 'A model has versions but no model.yaml.' },
  E_MODEL_NAME: { area: 'registry', exit: [content], summary: 'A folder under models/ whose name is not a valid model name.' },
  E_STRAY_FILE: { area: 'registry', exit: [content], summary: 'A file under models/ that is neither model.yaml nor versions/<N>.yaml.' },
  E_ALIAS_NAME: { area: 'registry', exit: [content], summary: 'An alias name is reserved: a stage name, `latest` or `v<digits>`.' },
  E_ALIAS_TARGET: { area: 'registry', exit: [content], summary: 'An alias points at a version that does not exist or is Archived.' },
  E_MULTIPLE_PRODUCTION: { area: 'registry', exit: [content], summary: 'More than one version of a model in Production.' },
  E_NO_REGISTRY: { area: 'registry', exit: [content], summary: 'No modelgate.yaml where a registry was expected.' },
  E_INVALID_MANIFEST: {
    area: 'registry',
    exit: [content],
    summary: 'A manifest the command reads, or the one it would write, is invalid; the problems are listed.',
  },
  E_INVALID_REGISTRY: { area: 'registry', exit: [content], summary: 'The registry does not validate, so no deploy pins are rendered from it.' },
  E_NOT_FOUND: { area: 'registry', exit: [content], summary: 'The model, version or commit named does not exist.' },
  E_NOT_A_FILE: { area: 'registry', exit: [content], summary: 'A registry path is a folder, link or device where a plain file belongs.' },
  E_VERSION: { area: 'registry', exit: [content], summary: 'A version number that is not a positive integer.' },
  E_PAGES_ASSETS: { area: 'registry', exit: [content], summary: "The registry pages' bundled scripts and styles are missing from this modelgate build." },
  E_TEMPLATE_MISSING: { area: 'registry', exit: [content], summary: 'The registry template shipped with modelgate is missing or incomplete.' },
  E_TEMPLATE_INVALID: {
    area: 'registry',
    exit: [content],
    summary: "The registry template's files do not load, or do not describe the example artifact `init --example` stores.",
  },
  E_REMOTE: {
    area: 'git',
    exit: [service],
    summary: 'A registry read from a git URL (`--registry https://…`) could not be fetched: an HTTP error, no such branch, a network failure.',
  },
  E_REMOTE_EMPTY: { area: 'git', exit: [service], summary: 'The git URL given as `--registry` has no commits.' },
  E_READ: { area: 'registry', exit: [content], summary: 'The gate could not read one side of a change; the message says why.' },

  // Lineage, metrics and parameters given to register.
  E_JSON: { area: 'lineage', exit: [content], summary: 'A metrics, parameters or signature file is not the JSON or YAML object expected.' },
  E_DUPLICATE_KEY: { area: 'lineage', exit: [content], summary: 'A metric or parameter is given twice.' },
  E_LIST_VALUE: { area: 'lineage', exit: [content], summary: 'A metric or parameter is a list; each item needs its own key.' },
  E_METRIC_KEY: { area: 'lineage', exit: [content], summary: 'A metric or parameter name outside the allowed characters.' },
  E_MLMODEL: {
    area: 'lineage',
    exit: [content],
    summary: "An MLflow model folder's MLmodel file that cannot be read: not YAML, too large, or a field of the wrong shape.",
  },
  E_SIGNATURE: { area: 'lineage', exit: [content], summary: "A `--signature` file that is not a signature in MLflow's shape (inputs, outputs, params)." },
  E_METRIC_VALUE: { area: 'lineage', exit: [content], summary: 'A metric that is not a finite number.' },
  E_PARAM_VALUE: { area: 'lineage', exit: [content], summary: 'A parameter that is not a string, a finite number or a boolean.' },
  E_NO_CODE_REPO: { area: 'lineage', exit: [usage], summary: '`--code auto` outside a git repository, or in one with no commit.' },

  // The artifact store.
  E_STORE_URI: { area: 'store', exit: [content], summary: 'storage.uri is neither `s3://bucket/prefix` nor `file:///path`.' },
  E_STORE_UNAVAILABLE: { area: 'store', exit: [service], summary: 'The file store cannot be created or reached.' },
  E_STORE_WRITE: { area: 'store', exit: [service], summary: 'Writing to the file store failed.' },
  E_DIGEST: { area: 'store', exit: [content], summary: 'A value that should be a sha256 digest is not one.' },
  E_INTEGRITY: { area: 'store', exit: [content], summary: 'Bytes whose sha256 differs from the one the manifest records.' },
  E_ARTIFACT_MISSING: { area: 'store', exit: [content], summary: 'The artifact the manifest names is not in the store.' },
  E_ARTIFACT_CONFLICT: { area: 'store', exit: [content], summary: 'The store already holds different bytes at that key; nothing is overwritten.' },
  E_ARTIFACT_VERIFY: { area: 'store', exit: [service], summary: 'After an upload the store holds the wrong size, or nothing.' },
  E_FOREIGN_ARTIFACT: { area: 'store', exit: [content], summary: "An artifact URI outside the registry's store." },
  E_SOURCE_CHANGED: { area: 'store', exit: [content], summary: 'The local file changed while it was being registered.' },
  E_INDEX: {
    area: 'store',
    exit: [content],
    summary: "A directory artifact's artifact.index that does not match: not the index format, or not the directory digest the manifest records.",
  },
  E_DOWNLOAD: { area: 'store', exit: [service], summary: 'Downloading an artifact failed.' },
  E_CANCELLED: { area: 'store', exit: [service], summary: 'The registration was cancelled (a signal) before it finished.' },
  E_IO_TIMEOUT: { area: 'store', exit: [service], summary: 'An outside service made no progress for MODELGATE_IO_TIMEOUT seconds.' },

  // S3.
  E_S3: { area: 'S3', exit: [service], summary: 'S3 failed in a way no other S3 code names; the message has the operation and HTTP status.' },
  E_S3_CREDENTIALS: { area: 'S3', exit: [service], summary: 'No AWS credentials, or S3 refused them.' },
  E_S3_NO_BUCKET: { area: 'S3', exit: [service], summary: 'The bucket of storage.uri does not exist.' },
  E_S3_UNREACHABLE: { area: 'S3', exit: [service], summary: 'The S3 endpoint cannot be reached.' },

  // git.
  E_GIT: { area: 'git', exit: [content, service], summary: 'A local git command failed or git could not be run.' },
  E_GIT_REMOTE: { area: 'git', exit: [service], summary: 'A git command talking to a remote (fetch, push) failed.' },
  E_INCOMPLETE_CLONE: {
    area: 'git',
    exit: [content],
    summary: 'gc refused a shallow or partial clone: manifests in the commits it lacks would look unreferenced.',
  },
  E_GIT_LOCKED: { area: 'git', exit: [content], summary: "The registry's git index is locked by another process, or a crashed one." },
  E_NO_COMMIT: { area: 'git', exit: [content], summary: 'The registry repository has no commit yet.' },
  E_MERGE_CONFLICT: { area: 'git', exit: [content], summary: 'The pull request does not merge cleanly into its base.' },

  // GitHub.
  E_GITHUB: {
    area: 'GitHub',
    exit: [service],
    summary: 'A GitHub API call failed (after the retries a rate limit or a 5xx gets); the message names the call, the HTTP status and the attempts.',
  },
  E_TOO_MANY_COMMITS: { area: 'GitHub', exit: [content], summary: 'A pull request with more commits than GitHub lists, so its contributors cannot be known.' },
  E_UNSAFE_CHECKOUT: { area: 'GitHub', exit: [usage], summary: 'The Action ran on a checkout of the pull request head instead of its base.' },
  E_MERGE_GROUP: {
    area: 'GitHub',
    exit: [content],
    summary: "A merge queue group's commit is not its pull request's approved head merged onto the group's base.",
  },
  E_HEAD_MOVED: { area: 'GitHub', exit: [service], summary: 'The pull request head moved while it was checked; the next run checks the new head.' },

  // The gate.
  E_PICKLE_SCAN: {
    area: 'gate',
    exit: [content],
    summary:
      "`register`'s scan refused the artifact (pickles that import globals outside the allow list, or an MLmodel that makes MLflow run the artifact's code), and the rule for the version's first stage asks for `scan: pickle`.",
  },
  E_TIMEOUT: { area: 'gate', exit: [content], summary: "An outside call of the gate took longer than the gate's deadline." },

  // Deploy pins.
  E_DEPLOY_SETTINGS: {
    area: 'deploy',
    exit: [content],
    summary: "A model's deploy settings cannot be rendered (a missing modelFormat or image, a reserved name).",
  },
  E_DEPLOY_EDIT: { area: 'deploy', exit: [content], summary: 'A hand-written deploy file lacks the field modelgate pins (MODEL_URI and its siblings).' },
  E_ENVIRONMENT_PATH: { area: 'deploy', exit: [content], summary: "An environment's path in modelgate.yaml is not a folder inside the registry." },
  E_PIN_COLLISION: { area: 'deploy', exit: [content], summary: 'A pin would overwrite a file modelgate did not write.' },
  E_RESOURCE_COLLISION: {
    area: 'deploy',
    exit: [content],
    summary: 'Two resources of an environment would have one kind, namespace and name after rendering, which kubectl kustomize refuses.',
  },
  E_DEPLOY_FORMAT: {
    area: 'deploy',
    exit: [content],
    summary:
      "The artifact's shape does not fit the KServe runtime of its model format (a single file where the runtime loads a folder, a folder without config.json or MLmodel).",
  },
  E_FILE_STORE_PIN: {
    area: 'deploy',
    exit: [content],
    summary: 'A file:// artifact would be pinned into an InferenceService without storage.pvc (KServe cannot download file:// URIs), or lies outside pvc.root.',
  },
  E_SYNC_NO_BRANCH: { area: 'deploy', exit: [service], summary: 'The remote has no branch to sync.' },

  // Promotions and the changes that carry them.
  E_NO_CHANGE: { area: 'promotion', exit: [content], summary: 'The promotion, archive or annotation would change nothing.' },
  E_NEVER_ALIASED: { area: 'promotion', exit: [content], summary: 'A rollback of an alias to a version it never pointed at, or with none to return to.' },
  E_NEVER_PRODUCTION: { area: 'promotion', exit: [content], summary: 'A rollback to a version that was never in Production, or with none to return to.' },
  E_BRANCH_DIVERGED: { area: 'promotion', exit: [service], summary: "The change's branch on the remote has commits this change does not build on." },
  E_NOT_FAST_FORWARD: { area: 'promotion', exit: [content], summary: 'HEAD moved while the commit was being made.' },
  E_PUSH_RACE: { area: 'promotion', exit: [service], summary: 'The remote branch kept moving; the push gave up after its retries.' },

  // Signed decision records.
  E_SIGNING_KEY: { area: 'evidence', exit: [usage], summary: 'MODELGATE_SIGNING_KEY is not a usable PEM private key.' },
  // modelgate serve (HTTP: the exit code is what the CLI would give the same fault).
  E_UNAUTHENTICATED: { area: 'serve', exit: [usage], summary: 'A request to serve without a valid bearer token where one is needed (HTTP 401).' },
  E_INTERNAL: { area: 'serve', exit: [content], summary: 'serve failed in a way it did not expect; its log has the details (HTTP 500).' },
  E_RATE_LIMITED: { area: 'serve', exit: [usage], summary: 'A client sent more requests than serve allows in a minute (HTTP 429).' },
  E_UPLOAD_UNKNOWN: {
    area: 'serve',
    exit: [usage],
    summary: 'An upload to serve that is not under way for this caller: never begun, registered, abandoned or expired (HTTP 404).',
  },
  E_UPLOAD_DIGEST: {
    area: 'serve',
    exit: [content],
    summary: 'A file uploaded to serve is not the bytes declared for it (its sha256 or size differs): nothing of it is stored (HTTP 422).',
  },
  E_UPLOAD_INCOMPLETE: { area: 'serve', exit: [usage], summary: 'An upload was registered before every file the store lacks was sent (HTTP 409).' },
  E_DECISION_RECORD: { area: 'evidence', exit: [service], summary: 'Reading or writing a decision record in the store failed.' },
  // An MLflow tracking server read by `import mlflow` and serve's registrations.
  E_MLFLOW: {
    area: 'MLflow',
    exit: [content, service],
    summary: "The MLflow tracking server answered an error (its code in the error's data; exit 1 for a resource it does not have) or did not answer.",
  },
  E_MLFLOW_SOURCE: {
    area: 'MLflow',
    exit: [content, service],
    summary:
      "A version's MLflow source names nothing modelgate can read: an unknown run, a missing path or object, a scheme it does not read (exit 1); or its S3 refused the credentials or could not be reached (exit 3, S3's code in the error's data).",
  },
} as const satisfies Record<`E_${string}`, ErrorCodeInfo>;

/** A stable error code; tsc refuses any string not declared in ERROR_CODES. */
export type ErrorCode = keyof typeof ERROR_CODES;
