export { runSchedulerBench, type SchedulerBenchOptions } from "./scheduler-bench.js";
