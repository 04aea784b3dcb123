import { KernelError, type KernelClient } from "../pseudokernel/index.js";
import {
  formatPlan,
  formatSpec,
  openSchedulerBucket,
  parseStrategy,
  Placer,
  readStrategy,
  writeStrategy,
  type Strategy,
} from "../scheduler/index.js";
import { commandsOf, placementProblem, placementSpec } from "../shell/index.js";
import { connectKernel } from "./find-cluster.js";
import { PROCESS_IO, withKernel, write, type VerbIo } from "./verb-io.js";
import { formatTable } from "./table.js";

async function strategyOf(kernel: KernelClient): Promise<Strategy> {
  try {
    return await readStrategy(await openSchedulerBucket(kernel.nc));
  } catch {
    return "spread";
  }
}

/**
 * `oneos place [--explain] '<command line>'`: where each simple command of the line would run now, and
 * with `--explain` why (every node's filter verdict and score parts); runs nothing. Exit 1 when a
 * command cannot be placed.
 */
export async function placeVerb(line: string, options: { explain?: boolean; nats?: string }, io: VerbIo = PROCESS_IO): Promise<number> {
  let commands;
  try {
    commands = commandsOf(line);
  } catch (error) {
    throw new KernelError("EINVAL", `place: ${(error as Error).message}`);
  }
  return await withKernel(io, options.nats, "oneos-place", async (kernel) => {
    const nodes = await kernel.nodes();
    const strategy = await strategyOf(kernel);
    const placer = new Placer();
    const now = Date.now();
    // The nodes' views are fresh as of now: nothing this simulation places is in them yet.
    const lastSeen = (): number => now - 1;
    let status = 0;
    const out: string[] = [];
    for (const c of commands) {
      const pipes = [`${c.pipeline}.${c.stage - 1}`, `${c.pipeline}.${c.stage}`];
      if (c.placement.kind === "all") {
        out.push(`@* ${c.text} → ${nodes.filter((n) => n.effective === "ready").map((n) => n.name).join(", ") || "no ready node"}`);
        continue;
      }
      const problem = placementProblem(c.placement);
      if (problem !== undefined) {
        out.push(`${c.text}: ${problem}`);
        status = 1;
        continue;
      }
      const spec = placementSpec(c.placement);
      const plan = placer.plan(spec, nodes, { strategy, lastSeen, pipes });
      const label = `${formatSpec(spec) || "(no prefix)"} ${c.text}`;
      if (plan.chosen === null) {
        status = 1;
        out.push(`${label}: ${formatPlan(plan)}`);
        continue;
      }
      placer.reserve(plan.chosen, spec.resources, pipes);
      out.push(options.explain === true ? `${label}\n${formatPlan(plan)}` : `${label} → ${plan.chosen}`);
    }
    await write(io.out, out.join("\n") + (out.length > 0 ? "\n" : ""));
    return status;
  });
}

/** `oneos scheduler` (show settings) / `oneos scheduler set strategy spread|binpack`. */
export async function schedulerVerb(args: readonly string[], options: { nats?: string }): Promise<number> {
  const kernel = await connectKernel(options.nats, "oneos-scheduler");
  try {
    if (args.length === 0) {
      process.stdout.write(`strategy ${await strategyOf(kernel)}\n`);
      return 0;
    }
    const [verb, key, value] = args;
    const strategy = value === undefined ? null : parseStrategy(value);
    if (verb !== "set" || key !== "strategy" || strategy === null || args.length !== 3) {
      throw new KernelError("EINVAL", "usage: oneos scheduler [set strategy spread|binpack]");
    }
    await writeStrategy(await openSchedulerBucket(kernel.nc), strategy);
    process.stdout.write(`strategy ${strategy}\n`);
    return 0;
  } finally {
    await kernel.close();
  }
}

