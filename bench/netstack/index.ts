export { runNetstackBench, type NetstackBenchOptions } from "./netstack-bench.js";
