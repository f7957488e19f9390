/**
 * Shell-style wildcard patterns (fnmatch without FNM_PATHNAME): `*` any run
 * of characters (including `/` and `.`), `?` one character, `[abc]`,
 * `[a-z]`, `[!abc]` one of / none of a set, `\x` a literal x. The whole text
 * must match.
 */

export interface GlobPattern {
  readonly pattern: string;
  matches(text: string): boolean;
}

/** Compiles a pattern; throws an Error saying what is wrong (an unclosed `[`, a trailing `\`). */
export function compileGlob(pattern: string, options: { ignoreCase?: boolean } = {}): GlobPattern {
  let source = "";
  for (let i = 0; i < pattern.length; i++) {
    const character = pattern[i]!;
    if (character === "*") {
      source += "[\\s\\S]*";
    } else if (character === "?") {
      source += "[\\s\\S]";
    } else if (character === "\\") {
      if (i + 1 >= pattern.length) throw new Error(`pattern ${JSON.stringify(pattern)} ends with a lone \\`);
      source += escapeRegExp(pattern[++i]!);
    } else if (character === "[") {
      const close = pattern.indexOf("]", pattern[i + 1] === "!" || pattern[i + 1] === "^" ? i + 3 : i + 2);
      if (close < 0) throw new Error(`pattern ${JSON.stringify(pattern)} has a [ without ]`);
      let body = pattern.slice(i + 1, close);
      const negated = body.startsWith("!") || body.startsWith("^");
      if (negated) body = body.slice(1);
      source += `[${negated ? "^" : ""}${body.replace(/[\\\]^]/g, (c) => `\\${c}`)}]`;
      i = close;
    } else {
      source += escapeRegExp(character);
    }
  }
  const expression = new RegExp(`^${source}$`, options.ignoreCase ? "i" : "");
  return { pattern, matches: (text) => expression.test(text) };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
