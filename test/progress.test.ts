import { describe, expect, it } from 'vitest';
import { createProgress, formatSize } from '../src/store/progress.js';

describe('formatSize', () => {
  it('picks the unit that keeps the number short', () => {
    expect(formatSize(0)).toBe('0 B');
    expect(formatSize(1023)).toBe('1023 B');
    expect(formatSize(1024)).toBe('1.0 KiB');
    expect(formatSize(1536)).toBe('1.5 KiB');
    expect(formatSize(150 * 1024)).toBe('150 KiB');
    expect(formatSize(1024 * 1024 - 1)).toBe('1.0 MiB');
    expect(formatSize(12.34 * 1024 * 1024)).toBe('12.3 MiB');
    expect(formatSize(5 * 1024 ** 3)).toBe('5.0 GiB');
    expect(formatSize(3 * 1024 ** 4)).toBe('3.0 TiB');
    expect(formatSize(-5)).toBe('0 B');
  });
});

describe('createProgress', () => {
  const sink = (over: { tty?: boolean; quiet?: boolean; json?: boolean } = {}) => {
    const lines: string[] = [];
    return { tty: false, quiet: false, json: false, ...over, stderr: (t: string) => lines.push(t), lines };
  };

  it('writes a line per quarter and the final one in a log', () => {
    const s = sink();
    const p = createProgress(s, 'uploading m.pt', 4096);
    for (let i = 0; i < 8; i++) p.add(512);
    p.done();
    expect(s.lines).toEqual([
      'uploading m.pt: 25% (1.0 KiB of 4.0 KiB)\n',
      'uploading m.pt: 50% (2.0 KiB of 4.0 KiB)\n',
      'uploading m.pt: 75% (3.0 KiB of 4.0 KiB)\n',
      'uploading m.pt: 100% (4.0 KiB of 4.0 KiB)\n',
    ]);
  });

  it('is silent with --quiet and --json', () => {
    for (const s of [sink({ quiet: true }), sink({ json: true })]) {
      const p = createProgress(s, 'x', 10);
      p.add(10);
      p.done();
      expect(s.lines).toEqual([]);
    }
  });
});
