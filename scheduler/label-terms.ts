import { KernelError } from "../pseudokernel/index.js";

/**
 * One label constraint: `key=v` (equality), `key=a/b` (set membership), `key!=v` / `key!=a/b`
 * (negation; a node without the label satisfies it).
 */
export interface LabelTerm {
  readonly key: string;
  readonly op: "in" | "notin";
  readonly values: readonly string[];
}

const KEY = /^[A-Za-z0-9_.-]+$/;
const VALUE = /^[A-Za-z0-9_.:-]*$/;

/**
 * Parses `gpu=1,zone=eu/us,arch!=arm` (terms joined by `,`, all must hold).
 *
 * @example
 * parseLabelTerms("zone=a/b"); // [{ key: "zone", op: "in", values: ["a", "b"] }]
 */
export function parseLabelTerms(text: string): LabelTerm[] {
  return text.split(",").map((term) => {
    const match = /^([^=!]+)(!?=)(.*)$/.exec(term);
    if (match === null) throw new KernelError("EINVAL", `'${term}': expected key=value, key=a/b or key!=value`);
    const key = match[1]!;
    const values = match[3]!.split("/");
    if (!KEY.test(key) || !values.every((v) => VALUE.test(v))) {
      throw new KernelError("EINVAL", `'${term}': labels use letters, digits, '_', '.', ':' and '-'`);
    }
    return { key, op: match[2] === "=" ? "in" : "notin", values };
  });
}

export function termHolds(term: LabelTerm, labels: Readonly<Record<string, string>>): boolean {
  const value = Object.hasOwn(labels, term.key) ? labels[term.key] : undefined;
  const member = value !== undefined && term.values.includes(value);
  return term.op === "in" ? member : !member;
}

export function formatTerm(term: LabelTerm): string {
  return `${term.key}${term.op === "in" ? "=" : "!="}${term.values.join("/")}`;
}
