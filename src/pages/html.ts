/**
 * HTML by tagged template: every interpolated value is escaped unless it is already `Html` (the
 * result of another `html` template, or `raw` for text this code produced itself, such as a laid
 * out SVG). Thirty lines with escaping as the default carry no dependency and no template syntax
 * to learn; a templating library (JSX, lit-html's server renderer) would add a build step or a
 * runtime for the same guarantee. Attribute values are always written in double quotes, which
 * `escapeHtml` escapes. Pure.
 */
const HTML = Symbol('html');

/** Markup that is safe to insert as is. */
export interface Html {
  readonly [HTML]: true;
  readonly text: string;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** Trusted markup, produced by this code (never user text). */
function raw(text: string): Html {
  return { [HTML]: true, text };
}

/** What a template takes: text and numbers (escaped), markup, and lists of them; nothing (null, undefined, false) writes nothing. */
export type HtmlValue = string | number | boolean | null | undefined | Html | readonly HtmlValue[];

function part(value: HtmlValue): string {
  if (value === undefined || value === null || value === false) return '';
  if (typeof value === 'object') return HTML in value ? value.text : value.map(part).join('');
  return escapeHtml(String(value));
}

/** `html\`<td>${name}</td>\``: values are escaped, arrays joined, null/undefined/false left out. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => (out += part(v) + strings[i + 1]!));
  return raw(out);
}

/** JSON for a `<script type="application/json">` block: `<` escaped so no text closes the element. */
export function jsonScript(id: string, value: unknown): Html {
  return raw(`<script type="application/json" id="${escapeHtml(id)}">${JSON.stringify(value).replace(/</g, '\\u003c')}</script>`);
}
