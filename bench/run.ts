#!/usr/bin/env node
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { runFoundationBench } from "./foundation-bench.js";
import { formatCloudFsBench, runCloudFsBench } from "./cloudfs/cloudfs-bench.js";
import { runTerminalBench } from "./terminal-bench.js";

/**
 * `npm run bench`: every benchmark, each printing a table of figures next to a reference measured in
 * the same run. The machine is shared and noisy: rows are medians, and ratios matter more than figures.
 */
const program = new Command("bench")
  .option("--only <name>", "run one benchmark: foundation | terminal | cloudfs | scheduler | netstack")
  .option("--bytes <n>", "bytes through each pipe (foundation)", String(2 * 1024 ** 3))
  .option("--spawns <n>", "remote spawns timed (foundation)", "200")
  .option("--runs <n>", "runs per throughput row", "3")
  .parse();
const options = program.opts<{ only?: string; bytes: string; spawns: string; runs: string }>();

const started = new Date();
console.log(`oneos benchmarks — ${started.toISOString()} — ${process.version}`);
if (options.only === undefined || options.only === "foundation") {
  console.log(await runFoundationBench({ bytes: Number(options.bytes), spawns: Number(options.spawns), runs: Number(options.runs) }));
}
if (options.only === undefined || options.only === "terminal") console.log(await runTerminalBench());
if (options.only === undefined || options.only === "cloudfs") console.log(formatCloudFsBench(await runCloudFsBench()));
// Benchmarks of parts that may not be built in every checkout are loaded if present.
for (const [name, file, fn] of [
  ["scheduler", "./scheduler/index.js", "runSchedulerBench"],
  ["netstack", "./netstack/index.js", "runNetstackBench"],
] as const) {
  const path = fileURLToPath(new URL(file, import.meta.url));
  if ((options.only === undefined || options.only === name) && existsSync(path)) {
    const module = (await import(path)) as Record<string, () => Promise<string>>;
    const run = module[fn];
    if (run !== undefined) console.log(await run());
  }
}
process.exit(0);
