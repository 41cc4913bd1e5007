// What judging a pull request needs once the pull request is read (git, the gate, its store and
// scanner, the report, the decision record): the Action imports this module only then, so its
// start compiles the GitHub client and little else (scripts/build.mjs puts it in its own chunks).
export { GitRepo } from '../git/repo.js';
export { registryPrefix } from '../registry/source.js';
export { evaluateGate } from '../gate/evaluate.js';
export { gateSidesFromGit } from '../gate/from-git.js';
export { renderMarkdown } from '../gate/report.js';
export { lazyStoreVerifier } from '../gate/store-verifier.js';
export { lazyStoreScanner } from '../gate/store-scanner.js';
export { describeRecord, recordDecision } from './decision-record.js';
