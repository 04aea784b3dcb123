#!/usr/bin/env node
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { runFoundationBench } from "./foundation-bench.js";
import { cloudFsBenchOptionsFromEnv, formatCloudFsBench, runCloudFsBench } from "./cloudfs/cloudfs-bench.js";
import { runTerminalBench } from "./terminal-bench.js";

/**
 * `npm run bench`: every benchmark, each printing a table of figures next to a reference measured in
 * the same run. The machine is shared and noisy: rows are medians, and ratios matter more than figures.
 *   node dist/bench/run.js [NAME]      one benchmark only (same as --only NAME), e.g. `node dist/bench/run.js cloudfs`
 */
const BENCHMARKS = ["foundation", "terminal", "cloudfs", "scheduler", "netstack"];
const program = new Command("bench")
  .argument("[name]", `run one benchmark: ${BENCHMARKS.join(" | ")}`)
  .option("--only <name>", "the same as the [name] argument")
  .option("--bytes <n>", "bytes through each pipe (foundation)", String(2 * 1024 ** 3))
  .option("--spawns <n>", "remote spawns timed (foundation)", "200")
  .option("--runs <n>", "runs per throughput row", "3")
  .parse();
const options = program.opts<{ only?: string; bytes: string; spawns: string; runs: string }>();
const only = options.only ?? program.args[0];
if (only !== undefined && !BENCHMARKS.includes(only)) program.error(`unknown benchmark ${only}: one of ${BENCHMARKS.join(", ")}`);

const started = new Date();
console.log(`oneos benchmarks — ${started.toISOString()} — ${process.version}`);
if (only === undefined || only === "foundation") {
  console.log(await runFoundationBench({ bytes: Number(options.bytes), spawns: Number(options.spawns), runs: Number(options.runs) }));
}
if (only === undefined || only === "terminal") console.log(await runTerminalBench());
// CloudFS sizes: ONEOS_BENCH_QUICK=1 and friends (see cloudfs/cloudfs-bench.ts); full sizes by default.
if (only === undefined || only === "cloudfs") {
  console.log(formatCloudFsBench(await runCloudFsBench({ ...cloudFsBenchOptionsFromEnv(), runs: Number(options.runs) })));
}
// Benchmarks of parts that may not be built in every checkout are loaded if present.
for (const [name, file, fn] of [
  ["scheduler", "./scheduler/index.js", "runSchedulerBench"],
  ["netstack", "./netstack/index.js", "runNetstackBench"],
] as const) {
  const path = fileURLToPath(new URL(file, import.meta.url));
  if ((only === undefined || only === name) && existsSync(path)) {
    const module = (await import(path)) as Record<string, () => Promise<string>>;
    const run = module[fn];
    if (run !== undefined) console.log(await run());
  }
}
process.exit(0);
