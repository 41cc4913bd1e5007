import { describe, expect, it } from 'vitest';
import { loadManifest, parsePlainFast, parsePlainFull, resolveCorePlain } from '../src/manifest/load.js';

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

const PIECES = [
  '',
  '',
  '+',
  '-',
  '0',
  '1',
  '7',
  '9',
  '00',
  '08',
  '0x',
  '0X',
  '0o',
  '0O',
  '0b',
  'e',
  'E',
  'e+',
  'e-',
  '.',
  '..',
  '_',
  'a',
  'f',
  'F',
  'g',
  'inf',
  'Inf',
  'INF',
  'iNf',
  'nan',
  'NaN',
  'NAN',
  '~',
  'null',
  'Null',
  'NULL',
  'nULL',
  'true',
  'True',
  'TRUE',
  'tRUE',
  'false',
  'False',
  'yes',
  'no',
  'on',
  'off',
  'Y',
  'n',
  '2026-01-01',
  'T10:00:00Z',
  ':',
  ' ',
  '#',
  '/',
  'sha256',
  '=',
];
const HEX = '0123456789abcdef';

function scalar(next: () => number): string {
  const r = next();
  const hex = (n: number) => Array.from({ length: n }, () => HEX[Math.floor(next() * 16)]).join('');
  if (r < 0.15) return hex(8 + Math.floor(next() * 57)); // digests, commits, short hashes
  if (r < 0.2) return `/sha256/${hex(64)}`;
  if (r < 0.25) return `${Math.floor(next() * 10)}e${hex(6)}`;
  const n = 1 + Math.floor(next() * 5);
  let out = '';
  for (let i = 0; i < n; i++) out += PIECES[Math.floor(next() * PIECES.length)]!;
  return out.trim();
}

/** One document with the scalar as a block value, a flow value, a sequence item and a key. */
function documents(s: string): string[] {
  return [`a: ${s}\n`, `a: [${s}, x]\n`, `a: {k: ${s}}\n`, `a:\n  - ${s}\n`, `${s}: v\n`, `a: {${s}: v}\n`, `a:\n  - ${s}: v\n`, `a: x ${s}\n`];
}

function compare(text: string) {
  const fast = parsePlainFast(text);
  if (fast === undefined) return 'declined';
  expect({ text, value: fast }).toEqual({ text, value: parsePlainFull(text) });
  return 'agreed';
}

describe('the fast path reads every document as the YAML 1.2 path does, or declines', () => {
  it('on 40,000 generated scalars in every position', () => {
    const next = rng(0x9e3779b1);
    const tally = { agreed: 0, declined: 0 };
    for (let i = 0; i < 5000; i++) {
      for (const text of documents(scalar(next))) tally[compare(text)]++;
    }
    // The property holds either way; this keeps the generator honest (it reaches both branches).
    expect(tally.agreed).toBeGreaterThan(20000);
    expect(tally.declined).toBeGreaterThan(100);
  });

  it.each([
    ['+0x1', '+0x1'],
    ['-0x1', '-0x1'],
    ['0x1F', 31],
    ['0X1F', '0X1F'],
    ['0o17', 15],
    ['0O17', '0O17'],
    ['+0o7', '+0o7'],
    ['017', 17],
    ['0b101', '0b101'],
    ['1_000', '1_000'],
    ['+12', 12],
    ['-0', -0],
    ['.5', 0.5],
    ['5.', 5],
    ['1e3', 1000],
    ['1E+3', 1000],
    ['.5e3', 500],
    ['+.inf', undefined],
    ['.NaN', undefined],
    ['.nAn', '.nAn'],
    ['1e999', undefined],
    ['~', null],
    ['', null],
    ['Null', null],
    ['nULL', 'nULL'],
    ['yes', 'yes'],
    ['on', 'on'],
    ['No', 'No'],
    ['True', true],
    ['tRUE', 'tRUE'],
    ['2026-01-01', '2026-01-01'],
    ['2026-01-01T10:00:00Z', '2026-01-01T10:00:00Z'],
    // Integers beyond 2^53 are refused (E_UNSAFE_INTEGER): a double would round them.
    ['12345678901234567890', undefined],
    ['9007199254740993', undefined],
    ['-9007199254740993', undefined],
    ['0x20000000000001', undefined],
    ['9007199254740991', 9007199254740991],
    ['1e20', 1e20],
  ])('reads %j as yaml does (%j)', (written, expected) => {
    const text = `a: ${written}\n`;
    expect((parsePlainFull(text) as { a: unknown } | undefined)?.a).toEqual(expected);
    compare(text);
    expect(resolveCorePlain(written)).toEqual(expected === undefined ? resolveCorePlain(written) : expected);
  });

  it('reads digests and commit hashes on the fast path, as strings', () => {
    const next = rng(7);
    const hex = (n: number) => Array.from({ length: n }, () => '0123456789abcdef'[Math.floor(next() * 16)]).join('');
    const values = ['9e3779b1', '0e002bc5', '1e100000', '00e12345', '0x9e37', `9e${hex(62)}`, `/sha256/0e002bc5${hex(56)}`, `sha256:${hex(64)}`];
    for (let i = 0; i < 200; i++) values.push(hex(40), hex(64), `${Math.floor(next() * 10)}e${hex(39)}`);
    for (const v of values) {
      const text = `commit: ${v}\nsha256: ${v}\nlist: [${v}]\n`;
      const fast = parsePlainFast(text) as Record<string, unknown> | undefined;
      if (/^(?:0x[0-9a-f]+|[0-9]+e[0-9]+)$/.test(v)) {
        // A number to YAML 1.2 too (or an overflow the full path reports): both paths agree.
        compare(text);
        continue;
      }
      expect(fast, v).toEqual({ commit: v, sha256: v, list: [v] });
      expect(parsePlainFull(text)).toEqual(fast);
    }
  });

  it('hands keys that YAML 1.2 would not read as strings to the full path', () => {
    for (const key of ['0x10', '~', '1', '01', 'True', '1.5', '.inf', '']) {
      for (const text of [`${key}: v\n`, `a: {${key}: v}\n`, `a: [${key}: v]\n`, `a:\n  - ${key}: v\n`]) {
        expect(parsePlainFast(text), text).toBeUndefined();
      }
    }
    expect(parsePlainFast('[a]: v\n')).toBeUndefined();
    expect(parsePlainFast('{a: 1}: v\n')).toBeUndefined();
    expect(parsePlainFast('a1: v\nyes: w\n')).toEqual({ a1: 'v', yes: 'w' });
  });

  it('declines a flow collection or quoted scalar continued no deeper than its node, which YAML 1.2 refuses', () => {
    const outcomes = { agreed: 0, declined: 0 };
    const pairs = [
      ['k: {x: 1,', 'y: 2}'],
      ['k: [1,', '2]'],
      ['k: "a', 'b"'],
      ["k: 'a", "b'"],
      ['k: {x: [1,', '2]}'],
      ['k: {x: "a', 'b"}'],
    ];
    for (const parent of ['', 'p:\n  ', 'p:\n  q:\n    ', '- ', 'p:\n  - '])
      for (const [open, close] of pairs) for (let pad = 0; pad <= 6; pad++) outcomes[compare(`${parent}${open}\n${' '.repeat(pad)}${close}\n`)]++;
    expect(outcomes.agreed).toBeGreaterThan(20);
    expect(outcomes.declined).toBeGreaterThan(20);
    expect(parsePlainFast('a: {x: y,\nstage: Archived\n}\nb: c\n')).toBeUndefined();
    expect(parsePlainFull('a: {x: y,\nstage: Archived\n}\nb: c\n')).toBeUndefined();
  });

  it('loadManifest gives the full path answer for auc: +0x1', () => {
    const text = 'apiVersion: modelgate.dev/v1\nkind: ModelVersion\nmodel: m\nversion: 1\nstage: None\nmetrics: {auc: +0x1}\n';
    expect(parsePlainFull(text)).toMatchObject({ metrics: { auc: '+0x1' } });
    const fast = loadManifest(text, 'models/m/versions/1.yaml', 'ModelVersion');
    expect(fast.value).toBeUndefined();
    expect(fast.problems.map((p) => p.field)).toContain('metrics.auc');
  });
});
