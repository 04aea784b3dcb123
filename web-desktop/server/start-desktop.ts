import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { homedir, userInfo } from "node:os";
import { join } from "node:path";
import express, { type NextFunction, type Request, type Response } from "express";
import { LocalCluster } from "../../cluster/index.js";
import { connectNats, KernelClient, type NatsCredentials } from "../../pseudokernel/index.js";
import { ApiError, apiErrorHandler } from "./api-error.js";
import { CloudFiles } from "./cloud-files.js";
import { clusterRoutes } from "./cluster-routes.js";
import { filesRoutes } from "./files-routes.js";
import { DEFAULT_UPLOAD_LIMIT_BYTES, JSON_BODY_LIMIT } from "./limits.js";
import { LiveFeed } from "./live-feed.js";
import { loginPage, missingClientPage } from "./login-page.js";
import { LoginSessions, sameOrigin } from "./login-sessions.js";
import { cliPath, clientDir, packageRoot } from "./package-paths.js";
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
  /** 0 (the default) picks a free port. */
  readonly port?: number;
  /** Default 127.0.0.1: the desktop runs shells as this user, so it listens on loopback unless told. */
  readonly host?: string;
  /** Largest file a browser may upload or save; default DEFAULT_UPLOAD_LIMIT_BYTES. */
  readonly uploadLimitBytes?: number;
  /** The login token; default: a random one (tests may fix it). */
  readonly token?: string;
  /** Where the desktop reports problems (a missing client build); default stderr. */
  readonly log?: (line: string) => void;
}

export interface DesktopHandle {
  /** The address to open, with the login token (`http://host:port/?token=...`). */
  readonly url: string;
  /** The address without the token. */
  readonly baseUrl: string;
  readonly token: string;
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

  const user = userInfo().username;
  const cred = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
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
  const files = new CloudFiles(filesNc, cred);
  const live = new LiveFeed(kernel);
  const shellEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) shellEnv[k] = v;
  Object.assign(shellEnv, { ONEOS_HOME: options.home, TERM: "xterm-256color", COLORTERM: "truecolor" });
  // The shells connect as the shell identity: `--creds` of the desktop itself must not reach them.
  delete shellEnv["ONEOS_CREDS"];
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
  const login = new LoginSessions(port, options.token);

  const app = express();
  app.disable("x-powered-by");
  app.use((_req, res, next) => {
    res.setHeader("X-Frame-Options", "DENY");
    res.setHeader("Referrer-Policy", "no-referrer");
    next();
  });

  // The bundle holds no secrets: served without a session so the login redirect stays simple.
  app.use("/assets", express.static(join(client, "assets"), { immutable: true, maxAge: "1y", fallthrough: false }));

  app.get("/", (req, res) => {
    const token = (req.query as Record<string, unknown>)["token"];
    if (token !== undefined) {
      if (!login.tokenMatches(token)) {
        res.status(401).type("html").send(loginPage("That token is not valid for this desktop."));
        return;
      }
      // Drop the token from the address bar (and from history) once it has opened a session.
      res.setHeader("Set-Cookie", login.open());
      res.redirect(303, "/");
      return;
    }
    if (login.sessionOf(req) === null) {
      res.status(401).type("html").send(loginPage(null));
      return;
    }
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
    if (login.sessionOf(req) === null) throw new ApiError(401, "EACCES", "not logged in");
    // SameSite=Strict already keeps other sites' requests cookie-less; refuse their writes outright too.
    if (req.method !== "GET" && req.method !== "HEAD" && req.headers.origin !== undefined && !sameOrigin(req)) {
      throw new ApiError(403, "EACCES", "cross-origin request refused");
    }
    res.setHeader("Cache-Control", "no-store");
    next();
  });
  api.use(express.json({ limit: JSON_BODY_LIMIT }));
  api.get("/session", (_req, res) => {
    res.json({ user, localCluster: isLocal, uploadLimitBytes: uploadLimit, home: "/home" });
  });
  api.post("/logout", (req, res) => {
    const id = login.sessionOf(req);
    if (id !== null) res.setHeader("Set-Cookie", login.close(id));
    res.json({ ok: true });
  });
  api.delete("/terminals/:id", (req, res) => {
    const owner = login.sessionOf(req);
    const terminal = owner === null ? null : terminals.find(String(req.params["id"]), owner);
    terminal?.close();
    res.json({ closed: terminal !== null });
  });
  api.use("/files", filesRoutes(files, uploadLimit));
  api.use("/cluster", (req, _res, next) => {
    // An action's effect (a kill, a node restart) should reach every open window without waiting a tick.
    if (req.method === "POST") _res.once("finish", () => live.poke());
    next();
  });
  api.use("/cluster", clusterRoutes({ kernel, user, local: isLocal ? local : null }));
  api.use((_req: Request) => {
    throw new ApiError(404, "ENOENT", "no such API");
  });
  app.use("/api", api);
  app.use(apiErrorHandler);
  server.on("request", app);

  const detachWs = attachWebSockets(server, { login, live, terminals });
  const host = options.host ?? "127.0.0.1";
  const shownHost = host.includes(":") ? `[${host}]` : host;
  const baseUrl = `http://${shownHost}:${port}/`;
  let closing: Promise<void> | undefined;
  return {
    url: `${baseUrl}?token=${login.token}`,
    baseUrl,
    token: login.token,
    close: () =>
      (closing ??= (async () => {
        terminals.close();
        live.close();
        detachWs();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await files.close();
        await filesNc.drain().catch(() => filesNc.close());
        await kernel.close();
      })()),
  };
}
