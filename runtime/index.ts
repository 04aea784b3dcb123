/** The per-node runtime daemon. */
export { NodeRuntime, type RuntimeOptions } from "./runtime.js";
export { reapChildren } from "./child-registry.js";
