import type { Placement } from "./executor.js";
import { isNode, type Word } from "./syntax.js";

/** What the `@...` first word of a simple command asks for. */
export type PlacementRequest = Placement | { readonly kind: "all" };

/**
 * Reads `@n2`, `@gpu=1` or `@*` from a command's first word, before any expansion: only a plain,
 * unquoted literal counts (so `"@n2"` or `$x` stay ordinary arguments). Returns null when the word is not
 * a placement prefix.
 */
export function placementOf(word: Word | undefined): PlacementRequest | null {
  if (word === undefined || word.Parts.length !== 1) return null;
  const part = word.Parts[0];
  if (!isNode(part, "Lit")) return null;
  const text = part.Value;
  if (!text.startsWith("@") || text.length < 2 || text.includes("\\")) return null;
  const body = text.slice(1);
  if (body === "*") return { kind: "all" };
  const eq = body.indexOf("=");
  if (eq > 0) return { kind: "label", key: body.slice(0, eq), value: body.slice(eq + 1) };
  if (/^[A-Za-z0-9_.-]+$/.test(body)) return { kind: "node", node: body };
  return null;
}
