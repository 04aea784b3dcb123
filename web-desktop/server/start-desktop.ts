import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { homedir } from "node:os";
import { join } from "node:path";
import express, { type NextFunction, type Request, type Response } from "express";
import { LocalCluster } from "../../cluster/index.js";
import { connectNats, KernelClient, type NatsCredentials } from "../../pseudokernel/index.js";
import { ApiError, apiErrorHandler } from "./api-error.js";
import { CloudFiles } from "./cloud-files.js";
import type { ClusterLogin } from "./cluster-login.js";
import { clusterRoutes } from "./cluster-routes.js";
import { filesRoutes } from "./files-routes.js";
import { DEFAULT_UPLOAD_LIMIT_BYTES, JSON_BODY_LIMIT, LOGIN_SWEEP_MS } from "./limits.js";
import { LiveFeed } from "./live-feed.js";
import { missingClientPage } from "./login-page.js";
import { loginRoutes } from "./login-routes.js";
import { LoginSessions, sameOrigin } from "./login-sessions.js";
import { OwnerToken } from "./owner-token.js";
import { cliPath, clientDir, packageRoot } from "./package-paths.js";
import { requestLogin, setRequestLogin } from "./request-login.js";
import { TerminalRegistry } from "./terminal-registry.js";
import { attachWebSockets } from "./ws-gateway.js";

export interface DesktopOptions {
  /** ONEOS_HOME: the shell in the terminal uses it, and node kill/restart use its local test cluster. */
  readonly home: string;
  /** A NATS server of the cluster. */
  readonly natsUrl: string;
  /** The desktop identity's credentials (both its connections use them); without: anonymous, plain. */
  readonly credentials?: NatsCredentials | undefined;
  /**
   * The credentials file the terminals' shells run with (`$ONEOS_CREDS`); default: none given, so a
   * shell takes the local test cluster's shell identity from ONEOS_HOME. Never the desktop's own.
   */
  readonly shellCredentialsFile?: string;
  /**
   * The cluster's admin credentials, for the machine owner's fast path: with them the desktop's URL
   * carries a token that logs in as root (a root session `issue`d per token login). Without: users log
   * in with a name and password only.
   */
  readonly ownerCredentials?: NatsCredentials | undefined;
  /** 0 (the default) picks a free port. */
  readonly port?: number;
  /** Default 127.0.0.1: logins go over plain HTTP, so it listens on loopback unless told. */
  readonly host?: string;
  /** Largest file a browser may upload or save; default DEFAULT_UPLOAD_LIMIT_BYTES. */
  readonly uploadLimitBytes?: number;
  /** The owner's token (only with `ownerCredentials`); default: a random one (tests may fix it). */
  readonly token?: string;
  /** Where the desktop reports problems (a missing client build); default stderr. */
  readonly log?: (line: string) => void;
}

export interface DesktopHandle {
  /** The address to open: with the owner's token (`http://host:port/?token=...`) when there is one. */
  readonly url: string;
  /** The address without the token. */
  readonly baseUrl: string;
  /** The owner's token; null without `ownerCredentials`. */
  readonly token: string | null;
  close(): Promise<void>;
}

/** Security headers for the app's own pages: scripts only from this server, no framing. */
const APP_CSP = "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'";

/**
 * Starts the web desktop: an express server for the Vue client and its API, WebSockets for live data
 * and terminals. It reaches the cluster only through the kernel API (KernelClient), the oneos shell (in
 * a PTY) and CloudFsCore.
 *
 * @example
 * const desktop = await startDesktop({ home: oneosHome(), natsUrl: "nats://127.0.0.1:4222" });
 * console.log(`open ${desktop.url}`);
 */
export async function startDesktop(options: DesktopOptions): Promise<DesktopHandle> {
  const log = options.log ?? ((line: string) => process.stderr.write(line + "\n"));
  const root = packageRoot();
  const client = clientDir(root);
  const clientBuilt = existsSync(join(client, "index.html"));
  if (!clientBuilt) log(`oneos desktop: the web client is not built (${client}/index.html is missing): run 'npm run build:desktop'`);
  const cli = cliPath(root);
  if (!existsSync(cli)) log(`oneos desktop: ${cli} is missing: run 'npm run build' (the terminal runs the built shell)`);

  const uploadLimit = options.uploadLimitBytes ?? DEFAULT_UPLOAD_LIMIT_BYTES;
  const local = new LocalCluster(options.home);
  const isLocal = (await local.state()) !== null;

  const kernel = await KernelClient.connect(options.natsUrl, { name: "oneos-desktop", credentials: options.credentials });
  const filesNc = await connectNats({
    servers: options.natsUrl,
    name: "oneos-desktop-files",
    credentials: options.credentials,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
  });
  const files = new CloudFiles(filesNc);
  const live = new LiveFeed(kernel);
  const shellEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) shellEnv[k] = v;
  Object.assign(shellEnv, { ONEOS_HOME: options.home, TERM: "xterm-256color", COLORTERM: "truecolor" });
  // The shells connect as the shell identity: `--creds` of the desktop itself must not reach them.
  delete shellEnv["ONEOS_CREDS"];
  // Each terminal gets its login's session (TerminalRegistry.open): never one inherited from here.
  delete shellEnv["ONEOS_SESSION"];
  delete shellEnv["ONEOS_PASSWORD"];
  if (options.shellCredentialsFile !== undefined) shellEnv["ONEOS_CREDS"] = options.shellCredentialsFile;
  // With a local cluster the shell finds a live node itself (the desktop's own may be killed from the Nodes window).
  if (isLocal) delete shellEnv["ONEOS_NATS"];
  else shellEnv["ONEOS_NATS"] = options.natsUrl;
  const terminals = new TerminalRegistry({ cli, env: shellEnv, cwd: process.env["HOME"] ?? homedir() });

  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const owner = options.ownerCredentials === undefined ? null : { token: new OwnerToken(options.token), admin: options.ownerCredentials };
  let endLoginSockets = (_owner: string): void => undefined;
  const login = new LoginSessions<ClusterLogin>(port, {
    expired: (user, now) => user.expired(now),
    // A login's shells and live views end with it.
    onEnd: (id) => {
      terminals.closeOwnedBy(id);
      endLoginSockets(id);
    },
  });
  const sweep = setInterval(() => login.sweep(), LOGIN_SWEEP_MS);
  sweep.unref();

  const app = express();
  app.disable("x-powered-by");
  app.use((_req, res, next) => {
    res.setHeader("X-Frame-Options", "DENY");
    res.setHeader("Referrer-Policy", "no-referrer");
    next();
  });

  // The bundle holds no secrets: served without a session so the login redirect stays simple.
  app.use("/assets", express.static(join(client, "assets"), { immutable: true, maxAge: "1y", fallthrough: false }));

  app.use(loginRoutes({ login, nc: kernel.nc, natsUrl: options.natsUrl, owner }));
  // loginRoutes answered every browser without a session: whoever gets here is logged in.
  app.get("/", (_req, res) => {
    res.setHeader("Content-Security-Policy", APP_CSP);
    res.setHeader("Cache-Control", "no-store");
    if (!clientBuilt) {
      res.status(503).type("html").send(missingClientPage(client));
      return;
    }
    res.sendFile(join(client, "index.html"));
  });

  const api = express.Router();
  api.use((req: Request, res: Response, next: NextFunction) => {
    const entry = login.sessionOf(req);
    if (entry === null) throw new ApiError(401, "EACCES", "not logged in");
    entry.value.keepFresh();
    setRequestLogin(res, entry.value);
    // SameSite=Strict already keeps other sites' requests cookie-less; refuse their writes outright too.
    if (req.method !== "GET" && req.method !== "HEAD" && req.headers.origin !== undefined && !sameOrigin(req)) {
      throw new ApiError(403, "EACCES", "cross-origin request refused");
    }
    res.setHeader("Cache-Control", "no-store");
    next();
  });
  api.use(express.json({ limit: JSON_BODY_LIMIT }));
  api.get("/session", (_req, res) => {
    const { user } = requestLogin(res);
    res.json({ user: user.name, uid: user.uid, home: user.home, localCluster: isLocal, uploadLimitBytes: uploadLimit });
  });
  api.post("/logout", (req, res) => {
    const entry = login.sessionOf(req);
    if (entry !== null) res.setHeader("Set-Cookie", login.close(entry.id));
    res.json({ ok: true });
  });
  api.delete("/terminals/:id", (req, res) => {
    const entry = login.sessionOf(req);
    const terminal = entry === null ? null : terminals.find(String(req.params["id"]), entry.id);
    terminal?.close();
    res.json({ closed: terminal !== null });
  });
  api.use("/files", filesRoutes(files, uploadLimit));
  api.use("/cluster", (req, _res, next) => {
    // An action's effect (a kill, a node restart) should reach every open window without waiting a tick.
    if (req.method === "POST") _res.once("finish", () => live.poke());
    next();
  });
  api.use("/cluster", clusterRoutes({ kernel, local: isLocal ? local : null }));
  api.use((_req: Request) => {
    throw new ApiError(404, "ENOENT", "no such API");
  });
  app.use("/api", api);
  app.use(apiErrorHandler);
  server.on("request", app);

  const sockets = attachWebSockets(server, { login, live, terminals });
  endLoginSockets = (id) => sockets.endLogin(id);
  const host = options.host ?? "127.0.0.1";
  const shownHost = host.includes(":") ? `[${host}]` : host;
  const baseUrl = `http://${shownHost}:${port}/`;
  let closing: Promise<void> | undefined;
  return {
    url: owner === null ? baseUrl : `${baseUrl}?token=${owner.token.token}`,
    baseUrl,
    token: owner?.token.token ?? null,
    close: () =>
      (closing ??= (async () => {
        clearInterval(sweep);
        login.closeAll();
        terminals.close();
        live.close();
        sockets.close();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await files.close();
        await filesNc.drain().catch(() => filesNc.close());
        await kernel.close();
      })()),
  };
}
