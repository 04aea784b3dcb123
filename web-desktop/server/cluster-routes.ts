import { Router, type Request } from "express";
import { LocalCluster } from "../../cluster/index.js";
import { NODE_NAME_PATTERN, parseSignal, type KernelClient } from "../../pseudokernel/index.js";
import { ApiError } from "./api-error.js";

function param(req: Request, name: string): string {
  const value = (req.params as Record<string, string | undefined>)[name];
  if (value === undefined) throw new ApiError(400, "EINVAL", `missing ${name}`);
  return value;
}

export interface ClusterRoutesOptions {
  readonly kernel: KernelClient;
  readonly user: string;
  /** The local test cluster, when the desktop runs beside one (enables node kill/restart). */
  readonly local: LocalCluster | null;
}

/**
 * Process and node actions: signals go through `KernelClient.signal` as `oneos kill` does; node
 * kill/restart go through `LocalCluster` as `oneos cluster kill/restart` do, and exist only for a local
 * test cluster.
 */
export function clusterRoutes(options: ClusterRoutesOptions): Router {
  const router = Router();
  const { kernel, user, local } = options;
  // One node operation at a time: kill and restart rewrite the cluster's state file.
  let nodeOps: Promise<unknown> = Promise.resolve();

  router.get("/processes", async (_req, res) => {
    res.json({ procs: await kernel.processes() });
  });

  router.get("/nodes", async (_req, res) => {
    res.json({ nodes: await kernel.nodes(), local: local !== null });
  });

  router.post("/processes/:pid/signal", async (req, res) => {
    const pid = Number(param(req, "pid"));
    if (!Number.isInteger(pid) || pid <= 0) throw new ApiError(400, "EINVAL", "bad pid");
    const raw = (req.body as Record<string, unknown> | undefined)?.["signal"] ?? "TERM";
    if (typeof raw !== "string") throw new ApiError(400, "EINVAL", "signal must be a name such as TERM");
    const signal = parseSignal(raw);
    await kernel.signal(pid, signal, user);
    res.json({ pid, signal });
  });

  router.post("/nodes/:name/:action", async (req, res) => {
    if (local === null) throw new ApiError(409, "ENOTSUP", "node kill/restart exist only for the local test cluster");
    const name = param(req, "name");
    const action = param(req, "action");
    if (!NODE_NAME_PATTERN.test(name)) throw new ApiError(400, "EINVAL", "bad node name");
    if (action !== "kill" && action !== "restart") throw new ApiError(404, "ENOENT", `no node action ${action}`);
    const op = nodeOps.then(() => (action === "kill" ? local.kill(name) : local.restart(name)));
    nodeOps = op.catch(() => undefined);
    await op;
    res.json({ name, action });
  });

  return router;
}
