/**
 * Shell patterns (`*`, `?`, `[...]`) as regular expressions, for globbing, `case` and `${a#pat}`.
 * A pattern is a list of chunks; quoted chunks match literally (`"*"` is a star).
 */
export interface Chunk {
  readonly text: string;
  readonly quoted: boolean;
}

/** True when an unquoted chunk holds a pattern character, i.e. the text needs matching at all. */
export function hasMagic(chunks: readonly Chunk[]): boolean {
  return chunks.some((c) => !c.quoted && /[*?[]/.test(c.text));
}

export function literalText(chunks: readonly Chunk[]): string {
  return chunks.map((c) => c.text).join("");
}

/**
 * The regular-expression source for a pattern. `pathSegment`: `*`, `?` and brackets never match `/`
 * (filename generation); otherwise they match any character (`case`, parameter trimming).
 */
export function patternSource(chunks: readonly Chunk[], options: { pathSegment: boolean }): string {
  const any = options.pathSegment ? "[^/]" : "[\\s\\S]";
  let out = "";
  for (const chunk of chunks) {
    if (chunk.quoted) {
      out += escapeRegExp(chunk.text);
      continue;
    }
    const text = chunk.text;
    for (let i = 0; i < text.length; i++) {
      const ch = text[i] ?? "";
      if (ch === "*") out += `${any}*`;
      else if (ch === "?") out += any;
      else if (ch === "[") {
        const bracket = readBracket(text, i);
        if (bracket === null) out += "\\[";
        else {
          out += bracket.source;
          i = bracket.end;
        }
      } else out += escapeRegExp(ch);
    }
  }
  return out;
}

/** Whole-string match of `text` against a pattern. */
export function matchPattern(chunks: readonly Chunk[], text: string): boolean {
  return new RegExp(`^${patternSource(chunks, { pathSegment: false })}$`).test(text);
}

function readBracket(text: string, start: number): { source: string; end: number } | null {
  let i = start + 1;
  let negate = false;
  if (text[i] === "!" || text[i] === "^") {
    negate = true;
    i++;
  }
  let body = "";
  // A `]` right after `[` or `[!` is a member, not the end.
  if (text[i] === "]") {
    body += "\\]";
    i++;
  }
  for (; i < text.length; i++) {
    const ch = text[i] ?? "";
    if (ch === "]") return { source: `[${negate ? "^" : ""}${body}]`, end: i };
    if (ch === "-" && body !== "" && text[i + 1] !== "]") body += "-";
    else body += ch === "\\" || ch === "^" || ch === "[" || ch === "-" ? `\\${ch}` : ch;
  }
  return null;
}

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
}
