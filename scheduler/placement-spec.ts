import { KernelError } from "../pseudokernel/index.js";
import { formatTerm, parseLabelTerms, type LabelTerm } from "./label-terms.js";
import { formatResources, isZero, NO_RESOURCES, parseResources, type Resources } from "./resources.js";

/** What a process asks of its node: all of it must hold (the filters), then the scores pick among the rest. */
export interface PlacementSpec {
  /** Exactly this node. */
  readonly node?: string;
  readonly labels: readonly LabelTerm[];
  readonly resources: Resources;
}

export const ANY_NODE: PlacementSpec = { labels: [], resources: NO_RESOURCES };

/** A placement prefix: `@*` (every node) or a spec. */
export type PlacementPrefix = { readonly kind: "all" } | { readonly kind: "spec"; readonly spec: PlacementSpec };

const NODE = /^[A-Za-z0-9_-]+$/;

/**
 * Parses the placement prefix of a command, without the leading `@`:
 *
 * | prefix | meaning |
 * | --- | --- |
 * | `@n2` | on node n2 |
 * | `@gpu=1` | on a node labelled gpu=1 |
 * | `@zone=a/b` | label zone is a or b (set membership) |
 * | `@arch!=arm` | label arch is not arm (or absent); `!=a/b` is none of them |
 * | `@gpu=1,zone=a` | every term must hold |
 * | `@{cpu=2,mem=512M}` | any node with 2 cores and 512 MiB not yet reserved; reserved until the process ends |
 * | `@n2{cpu=1}`, `@gpu=1{mem=1G}` | a selector and a request together |
 * | `@*` | every node (the shell's fan-out) |
 *
 * Returns null when the text is not a prefix (so `@` words stay ordinary arguments); throws EINVAL for
 * a prefix with a bad request in it.
 *
 * @example
 * parsePlacementPrefix("gpu=1{cpu=0.5}");
 */
export function parsePlacementPrefix(body: string): PlacementPrefix | null {
  if (body === "*") return { kind: "all" };
  const brace = body.indexOf("{");
  let selector = body;
  let resources = NO_RESOURCES;
  if (brace >= 0) {
    if (!body.endsWith("}")) return null;
    selector = body.slice(0, brace);
    resources = parseResources(body.slice(brace + 1, -1));
  }
  if (selector === "") return brace >= 0 ? { kind: "spec", spec: { labels: [], resources } } : null;
  if (selector.includes("=")) return { kind: "spec", spec: { labels: parseLabelTerms(selector), resources } };
  if (NODE.test(selector)) return { kind: "spec", spec: { node: selector, labels: [], resources } };
  return null;
}

/** The prefix that asks for this spec (`@n2{cpu=1}`), or `""` for no constraint at all. */
export function formatSpec(spec: PlacementSpec): string {
  const selector = spec.node ?? spec.labels.map(formatTerm).join(",");
  const request = isZero(spec.resources) ? "" : `{${formatResources(spec.resources)}}`;
  return selector === "" && request === "" ? "" : `@${selector}${request}`;
}

/** Joins two specs (a prefix and `--cpu`/`--mem` options); conflicting nodes are a usage error. */
export function mergeSpecs(a: PlacementSpec, b: PlacementSpec): PlacementSpec {
  if (a.node !== undefined && b.node !== undefined && a.node !== b.node) {
    throw new KernelError("EINVAL", `two nodes asked for: ${a.node} and ${b.node}`);
  }
  const node = a.node ?? b.node;
  return {
    ...(node !== undefined ? { node } : {}),
    labels: [...a.labels, ...b.labels],
    resources: { cpu: Math.max(a.resources.cpu, b.resources.cpu), mem: Math.max(a.resources.mem, b.resources.mem) },
  };
}
