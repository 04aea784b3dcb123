import { Router, type Request } from "express";
import { LocalCluster } from "../../cluster/index.js";
import { KernelError, NODE_NAME_PATTERN, parseSignal, type KernelClient } from "../../pseudokernel/index.js";
import { ApiError } from "./api-error.js";
import type { ClusterLogin } from "./cluster-login.js";
import { requestLogin } from "./request-login.js";

function param(req: Request, name: string): string {
  const value = (req.params as Record<string, string | undefined>)[name];
  if (value === undefined) throw new ApiError(400, "EINVAL", `missing ${name}`);
  return value;
}

function pidParam(req: Request): number {
  const pid = Number(param(req, "pid"));
  if (!Number.isInteger(pid) || pid <= 0) throw new ApiError(400, "EINVAL", "bad pid");
  return pid;
}

/** `?since=N`: an output offset the browser already has (absent: the whole tail). */
function sinceQuery(req: Request): number | null {
  const raw = req.query["since"];
  if (raw === undefined) return null;
  const since = typeof raw === "string" && /^\d{1,15}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(since)) throw new ApiError(400, "EINVAL", "since must be a byte offset");
  return since;
}

/**
 * Rethrows a runtime's EPERM for another user's process as a message naming its owner. EPERM also
 * means a session the runtimes no longer take: only another's process gets this text.
 */
async function refusedAs(error: unknown, what: string, pid: number, login: ClusterLogin, kernel: KernelClient): Promise<never> {
  if (!(error instanceof KernelError) || error.code !== "EPERM") throw error;
  const owner = (await kernel.process(pid).catch(() => null))?.user;
  if (owner === undefined || owner === login.user.name) throw error;
  throw new ApiError(403, "EPERM", `${what} ${pid}: operation not permitted (the process belongs to ${owner}; you are ${login.user.name})`, { cause: error });
}

export interface ClusterRoutesOptions {
  /** The desktop's own client: cluster views, which need no session. */
  readonly kernel: KernelClient;
  /** The local test cluster, when the desktop runs beside one (enables node kill/restart). */
  readonly local: LocalCluster | null;
}

/**
 * Process and node actions. Signals and output tails go out through the request's own login
 * (`KernelClient.signal` / `tail` in that user's session, as `oneos kill` / `oneos logs` in their shell),
 * so the runtimes refuse another user's process.
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
    const pid = pidParam(req);
    const raw = (req.body as Record<string, unknown> | undefined)?.["signal"] ?? "TERM";
    if (typeof raw !== "string") throw new ApiError(400, "EINVAL", "signal must be a name such as TERM");
    const signal = parseSignal(raw);
    const login = requestLogin(res);
    try {
      await login.kernel.signal(pid, signal);
    } catch (error) {
      await refusedAs(error, "kill", pid, login, kernel);
    }
    res.json({ pid, signal });
  });

  /**
   * The process's output tail (what `oneos logs` prints): the bytes after `since`, or the whole tail.
   * `from` is the offset of the first byte sent; `from > since` means the bytes between were no longer
   * kept. The bytes go as they are (base64): decoding them here would break a UTF-8 character cut at the
   * edge, which the browser's streaming decoder joins with the next answer.
   */
  router.get("/processes/:pid/output", async (req, res) => {
    const pid = pidParam(req);
    const since = sinceQuery(req);
    const login = requestLogin(res);
    let tail: { data: Uint8Array; total: number };
    try {
      tail = await login.kernel.tail(pid);
    } catch (error) {
      return await refusedAs(error, "output of", pid, login, kernel);
    }
    const first = tail.total - tail.data.length;
    // An offset past the end cannot come from this process's output: send the whole tail again.
    const from = since === null || since < first || since > tail.total ? first : since;
    res.json({ pid, total: tail.total, from, data: Buffer.from(tail.data.subarray(from - first)).toString("base64") });
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
