import type { PlacementPlan } from "./plan.js";
import { formatSpec } from "./placement-spec.js";

function what(plan: PlacementPlan): string {
  return formatSpec(plan.spec) || "any node";
}

/** `no node fits @{cpu=64}:` then one line per node with the filter that rejected it (as `nomad job plan`). */
export function formatPlanFailure(plan: PlacementPlan): string {
  const lines = [`no node fits ${what(plan)}:`];
  if (plan.nodes.length === 0) lines.push("  (no nodes known)");
  for (const n of plan.nodes) {
    if (n.rejected !== undefined) lines.push(`  ${n.name}: ${n.rejected.filter}: ${n.rejected.reason}`);
  }
  return lines.join("\n");
}

/** The whole decision: the chosen node, every passing node's score parts, every rejected node's reason. */
export function formatPlan(plan: PlacementPlan): string {
  if (plan.chosen === null) return formatPlanFailure(plan);
  const lines = [`${what(plan)} → ${plan.chosen}   (strategy ${plan.strategy})`];
  for (const n of plan.nodes) {
    if (n.rejected !== undefined) {
      lines.push(`  ${n.name}: rejected by ${n.rejected.filter}: ${n.rejected.reason}`);
    } else {
      const parts = Object.entries(n.scores ?? {}).map(([k, v]) => `${k} ${v.toFixed(3)}`);
      lines.push(`  ${n.name}: score ${n.total!.toFixed(3)} (${parts.join(", ")})${n.name === plan.chosen ? "  ← chosen" : ""}`);
    }
  }
  return lines.join("\n");
}
