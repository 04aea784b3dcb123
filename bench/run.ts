#!/usr/bin/env node
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { runFoundationBench } from "./foundation-bench.js";

/**
 * `npm run bench`: every benchmark, each printing a table of figures next to a reference measured in
 * the same run. The machine is shared and noisy: rows are medians, and ratios matter more than figures.
 */
const program = new Command("bench")
  .option("--only <name>", "run one benchmark: foundation | cloudfs")
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
const cloudfs = fileURLToPath(new URL("./cloudfs/index.js", import.meta.url));
if ((options.only === undefined || options.only === "cloudfs") && existsSync(cloudfs)) {
  const module = (await import(cloudfs)) as { runCloudFsBench?: () => Promise<string> };
  if (module.runCloudFsBench !== undefined) console.log(await module.runCloudFsBench());
}
process.exit(0);
