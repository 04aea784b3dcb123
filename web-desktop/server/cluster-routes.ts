import { Router, type Request } from "express";
import { LocalCluster } from "../../cluster/index.js";
import { KernelError, NODE_NAME_PATTERN, parseSignal, type KernelClient } from "../../pseudokernel/index.js";
import { ApiError } from "./api-error.js";
import { requestLogin } from "./request-login.js";

function param(req: Request, name: string): string {
  const value = (req.params as Record<string, string | undefined>)[name];
  if (value === undefined) throw new ApiError(400, "EINVAL", `missing ${name}`);
  return value;
}

export interface ClusterRoutesOptions {
  /** The desktop's own client: cluster views, which need no session. */
  readonly kernel: KernelClient;
  /** The local test cluster, when the desktop runs beside one (enables node kill/restart). */
  readonly local: LocalCluster | null;
}

/**
 * Process and node actions. Signals go out through the request's own login (`KernelClient.signal` in
 * that user's session, as `oneos kill` in their shell), so the runtimes refuse another user's process.
 * Node kill/restart go through `LocalCluster` as `oneos cluster kill/restart` do, exist only for a
 * local test cluster, and only root may use them.
 */
export function clusterRoutes(options: ClusterRoutesOptions): Router {
  const router = Router();
  const { kernel, local } = options;
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
    const login = requestLogin(res);
    try {
      await login.kernel.signal(pid, signal, login.user.name);
    } catch (error) {
      if (!(error instanceof KernelError) || error.code !== "EPERM") throw error;
      // EPERM also means a session the runtimes no longer take: only another's process gets this text.
      const owner = (await kernel.process(pid).catch(() => null))?.user;
      if (owner === undefined || owner === login.user.name) throw error;
      throw new ApiError(403, "EPERM", `kill ${pid}: operation not permitted (the process belongs to ${owner}; you are ${login.user.name})`, { cause: error });
    }
    res.json({ pid, signal });
  });

  router.post("/nodes/:name/:action", async (req, res) => {
    if (local === null) throw new ApiError(409, "ENOTSUP", "node kill/restart exist only for the local test cluster");
    if (requestLogin(res).user.uid !== 0) throw new ApiError(403, "EPERM", "only root may kill or restart nodes");
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
