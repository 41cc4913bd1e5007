/** One step of a glob: a literal character, `?`, `*` (within a folder), `**` (across folders), or `**` then a slash (any folders, or none). */
type GlobToken = { literal: string } | { any: 'char' | 'segment' | 'path' | 'folders' };

function tokens(glob: string): GlobToken[] {
  const out: GlobToken[] = [];
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      i++;
      if (glob[i + 1] === '/') {
        i++;
        out.push({ any: 'folders' });
      } else out.push({ any: 'path' });
    } else if (c === '*') out.push({ any: 'segment' });
    else if (c === '?') out.push({ any: 'char' });
    else out.push({ literal: c });
  }
  return out;
}

/**
 * Path globs of policy `paths` rules: `**` crosses folders, `*` and `?` stay within one, a
 * trailing `/**` also matches the folder's files at any depth. Everything else is literal.
 * Matched by following every place in the glob at once, one character of the path at a time:
 * time is the path's length times the glob's, however many stars it has (a regular expression
 * with a `.*` per `**` backtracks polynomially over a long path; SPEC §14).
 */
export function matchesGlob(path: string, glob: string): boolean {
  const steps = tokens(glob);
  let here = closure(steps, new Set([0]));
  for (const c of path) {
    const next = new Set<number>();
    for (const s of here) {
      const t = steps[s];
      if (!t) continue;
      if ('literal' in t) {
        if (t.literal === c) next.add(s + 1);
      } else if (t.any === 'char') {
        if (c !== '/') next.add(s + 1);
      } else if (t.any === 'segment') {
        if (c !== '/') next.add(s);
      } else if (t.any === 'path') next.add(s);
      else {
        next.add(s);
        if (c === '/') next.add(s + 1);
      }
    }
    if (next.size === 0) return false;
    here = closure(steps, next);
  }
  return here.has(steps.length);
}

/** The places reachable without reading a character: past any star, which may match nothing. */
function closure(steps: readonly GlobToken[], places: Set<number>): Set<number> {
  for (const s of places) {
    const t = steps[s];
    if (t && 'any' in t && t.any !== 'char') places.add(s + 1);
  }
  return places;
}
