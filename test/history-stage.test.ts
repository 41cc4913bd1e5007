import { describe, expect, it } from 'vitest';
import { loadManifest } from '../src/manifest/load.js';
import { stageFromLine } from '../src/registry/history.js';
import { quickStage } from '../src/registry/layout.js';

/** mulberry32: a small seeded generator, so a failure replays with the same seed. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PATH = 'models/fraud/versions/3.yaml';

/** What history answered before the line scan: the loader, else the first `stage:` line. */
function reference(text: string) {
  const loaded = loadManifest(text, PATH, 'ModelVersion');
  return loaded.value ? loaded.value.stage : stageFromLine(text);
}

const HEAD = `apiVersion: modelgate.dev/v1
kind: ModelVersion
model: fraud
version: 3
`;
const TAIL = `createdAt: "2026-03-01T10:00:00Z"
createdBy: maria
artifact:
  uri: s3://ml-models/registry/fraud/sha256/${'9e3779b1'.repeat(8)}/model.onnx
  sha256: "${'9e3779b1'.repeat(8)}"
  size: 1000
format: onnx
metrics: {auc: 0.91}
lineage:
  code: {repository: https://github.com/acme/fraud, commit: "${'0e002bc5'.repeat(5)}"}
  data: [{id: txn-2024}]
`;

const STAGES = ['Production', 'Staging', 'Archived', 'None', 'production', 'Prod'];

/** Lines that may stand for, hide, repeat or mimic the `stage` key. */
function stageForms(next: () => number): string[] {
  const s = () => STAGES[Math.floor(next() * STAGES.length)]!;
  return [
    `stage: ${s()}\n`,
    `stage: "${s()}"\n`,
    `stage: '${s()}'\n`,
    `stage: ${s()} # a comment\n`,
    `stage: ${s()}#not-a-comment\n`,
    `stage:   ${s()}   \n`,
    `stage:\n  ${s()}\n`,
    `stage: ${s()}\n  continued\n`,
    `stage: !!str ${s()}\n`,
    `stage: &a ${s()}\n`,
    `"stage": ${s()}\n`,
    `'stage': ${s()}\n`,
    `"st\\x61ge": ${s()}\n`,
    `? stage\n: ${s()}\n`,
    `stage: "Produ\\x63tion"\n`,
    `stage: ${s()}\r\n`,
    `stage:\t${s()}\n`,
    `# stage: ${s()}\n`,
    `stages: ${s()}\n`,
    `description: "multi\nstage: ${s()}"\n`,
    `description: "multi\nstage: ${s()}\n"\n`,
    `description: 'multi\nstage: ${s()}'\n`,
    `description: |\n  stage: ${s()}\n`,
    `notes: {x: 1,\nstage: ${s()}}\n`,
    `notes: {x: 1,\nstage: ${s()}\n}\n`,
    `notes: [x,\nstage: ${s()}]\n`,
    `annotations:\n  stage: ${s()}\n`,
    `description: the stage is ${s()}\n`,
    '',
  ];
}

/** Whole-document shapes around the lines: block, flow, indented, several documents, BOM, directives. */
function wrap(next: () => number, body: string): string {
  const r = next();
  if (r < 0.55) return body;
  if (r < 0.6) return `\uFEFF${body}`;
  if (r < 0.65) return `---\n${body}`;
  if (r < 0.7) return `%YAML 1.2\n---\n${body}`;
  if (r < 0.75) return `${body}---\nstage: Archived\n`;
  if (r < 0.8) return body.replace(/^(?=.)/gm, '  ');
  if (r < 0.85) return `# header\n\n${body}`;
  if (r < 0.9) return `{${body.trimEnd().split('\n').join(',\n')}}\n`;
  if (r < 0.95) return body.replace(/\n/g, '\r\n');
  return `  a: "x\n${body}"\n`;
}

describe('quickStage: the line scan history uses in place of a YAML parse per blob', () => {
  it('answers as the loader (or, for an invalid document, its first stage line) does, or declines', () => {
    const next = rng(0x5eed);
    const tally = { agreed: 0, declined: 0 };
    for (let i = 0; i < 8000; i++) {
      const forms = stageForms(next);
      const pick = () => forms[Math.floor(next() * forms.length)]!;
      // Half the documents have one of the forms, the others two or three of them.
      const lines = Array.from({ length: next() < 0.5 ? 1 : 2 + Math.floor(next() * 2) }, pick);
      // Lines go before, between or after the fixed fields.
      const at = Math.floor(next() * 3);
      const body = at === 0 ? lines.join('') + HEAD + TAIL : at === 1 ? HEAD + lines.join('') + TAIL : HEAD + TAIL + lines.join('');
      const text = wrap(next, body);
      const quick = quickStage(text);
      if (quick === undefined) {
        tally.declined++;
        continue;
      }
      expect({ text, stage: quick }).toEqual({ text, stage: reference(text) });
      tally.agreed++;
    }
    // Both outcomes are exercised: the scan answers for the plain forms and declines the rest.
    expect(tally.agreed).toBeGreaterThan(300);
    expect(tally.declined).toBeGreaterThan(1000);
  });

  it('answers for the manifests modelgate writes, in each stage, without the parser', () => {
    for (const stage of ['None', 'Staging', 'Production', 'Archived'] as const) {
      const text = `${HEAD}stage: ${stage}\n${TAIL}`;
      expect(reference(text)).toBe(stage);
      expect(quickStage(text)).toBe(stage);
      expect(quickStage(`${HEAD}stage: "${stage}"  # promoted\n${TAIL}`)).toBe(stage);
    }
  });

  it('declines the forms only the parser reads right', () => {
    const hidden = `${HEAD}description: "x\nstage: Archived\n"\nstage: Production\n${TAIL}`;
    expect(quickStage(hidden)).toBeUndefined();
    expect(quickStage(`${HEAD}"st\\x61ge": Archived\n${TAIL}`)).toBeUndefined();
    expect(quickStage(`${HEAD}? stage\n: Archived\n${TAIL}`)).toBeUndefined();
    expect(quickStage(`{${HEAD.trimEnd().split('\n').join(', ')}, stage: Archived}\n`)).toBeUndefined();
    expect(quickStage(`${HEAD}stage:\n  Archived\n${TAIL}`)).toBeUndefined();
  });
});
