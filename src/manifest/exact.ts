/**
 * What input can be stored exactly (SPEC §14): the manifest loader and the metrics and
 * parameters files of `register` refuse, naming the place, what they could only keep altered.
 */

/** Keys that could reach an object's prototype if the data were ever merged or assigned naively. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

// YAML 1.2 allows only printable characters in a stream (c-printable: tab, line breaks, U+0020–U+007E,
// NEL, U+00A0–U+D7FF, U+E000–U+FFFD and the planes beyond): no NUL or other control characters, no
// lone surrogate, no U+FFFE/U+FFFF. A value may not hold them either, escaped ("\0") or not: git,
// Kubernetes and C strings cut or refuse them. One character class, so the engine scans for it
// quickly; a surrogate it stops at is looked at with its neighbour.
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const SUSPECT = /[\0-\x08\v\f\x0E-\x1F\x7F-\x84\x86-\x9F\uD800-\uDFFF\uFFFD-\uFFFF]/g;

/**
 * Offset of the first character that may not be stored, or -1. With `replaced`, U+FFFD counts
 * too: in a file's text it stands for bytes that were not UTF-8 (every reader decodes with
 * replacement, so this is where invalid UTF-8 shows).
 */
function firstUnprintable(text: string, replaced: boolean): number {
  SUSPECT.lastIndex = 0;
  for (let m = SUSPECT.exec(text); m; m = SUSPECT.exec(text)) {
    const c = text.charCodeAt(m.index);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = text.charCodeAt(m.index + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        SUSPECT.lastIndex = m.index + 2;
        continue;
      }
    } else if (c === 0xfffd && !replaced) continue;
    return m.index;
  }
  return -1;
}

/** The ASCII characters YAML forbids: the C0 controls but tab and the line breaks, and DEL. */
const ASCII_FORBIDDEN: readonly string[] = [...Array(32).keys(), 127].filter((c) => c !== 9 && c !== 10 && c !== 13).map((c) => String.fromCharCode(c));

/**
 * Where a file's text holds a character it may not (the first one), with the message to give.
 * `ascii` says the text is known to be ASCII only (its UTF-8 size equals its length): then only
 * the 30 ASCII controls can be there, and 30 searches for one character each (memchr) answer
 * "none" in a third of the time of one scan with the character class.
 */
export function unprintableInText(text: string, ascii = false): { offset: number; line: number; col: number; message: string } | undefined {
  if (ascii && !ASCII_FORBIDDEN.some((c) => text.includes(c))) return undefined;
  const at = firstUnprintable(text, true);
  if (at < 0) return undefined;
  const start = text.lastIndexOf('\n', at - 1) + 1;
  let line = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < at; i = text.indexOf('\n', i + 1)) line++;
  const message =
    text[at] === '\uFFFD'
      ? 'bytes that are not UTF-8 (or U+FFFD, which stands for them); save the file as UTF-8'
      : `the character ${codePoint(text[at]!)} is not allowed (YAML and git keep only printable text); remove it`;
  return { offset: at, line, col: at - start + 1, message };
}

/** The first character of a string value or key that could not be stored as it is, as `U+0000 (NUL)`; undefined when none. */
export function unprintableInValue(value: string): string | undefined {
  const at = firstUnprintable(value, false);
  return at < 0 ? undefined : codePoint(value[at]!);
}

function codePoint(c: string): string {
  const hex = `U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
  return c === '\0' ? `${hex} (NUL)` : hex;
}

// An integer as YAML 1.2's core schema and JSON write it (decimal, 0o octal, 0x hex).
const INTEGER_TEXT = /^[-+]?\d+$|^0o[0-7]+$|^0x[\da-f]+$/i;

/**
 * True when `written` is an integer whose value a JSON number (an IEEE double) cannot hold
 * exactly: beyond 2^53, where `12345678901234567890` silently becomes 12345678901234567000.
 */
export function isInexactInteger(written: string, value: number): boolean {
  return !Number.isSafeInteger(value) && Number.isFinite(value) && INTEGER_TEXT.test(written.trim());
}

/** A value for a message: at most `max` characters of it, JSON-quoted, so that a 100 MB value never reaches a log line. */
export function excerpt(value: string, max = 40): string {
  return JSON.stringify(value.length > max ? `${value.slice(0, max - 1)}…` : value);
}

/**
 * Offset of the first byte that does not belong to a well-formed UTF-8 sequence (overlong forms,
 * surrogates and code points beyond U+10FFFF included), or -1 when all of them do.
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length;) {
    const c = bytes[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    const more = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : 0;
    if (more === 0 || i + more >= bytes.length) return i;
    const lo = c === 0xe0 ? 0xa0 : c === 0xf0 ? 0x90 : 0x80;
    const hi = c === 0xed ? 0x9f : c === 0xf4 ? 0x8f : 0xbf;
    if (bytes[i + 1]! < lo || bytes[i + 1]! > hi) return i;
    for (let k = 2; k <= more; k++) if ((bytes[i + k]! & 0xc0) !== 0x80) return i;
    i += more + 1;
  }
  return -1;
}
