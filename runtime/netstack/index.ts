/**
 * The netstack: a TCP server on one node is reachable at the same port from programs on every node.
 * See README.md ("Netstack").
 */
export { Netstack, type NetstackOptions } from "./netstack.js";
export { openPortRegistry, PORTS_BUCKET } from "./port-registry.js";
export { parsePortRecord, type PortRecord } from "./wire.js";
