import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import { toApiError } from "./api-error.js";
import type { ClusterLogin } from "./cluster-login.js";
import type { LiveFeed } from "./live-feed.js";
import { WS_MAX_PAYLOAD } from "./limits.js";
import { sameOrigin, type LoginSessions } from "./login-sessions.js";
import type { TerminalRegistry } from "./terminal-registry.js";

function refuse(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
}

function size(value: string | null, fallback: number): number {
  const n = Number(value);
  return Number.isInteger(n) && n >= 2 && n <= 1000 ? n : fallback;
}

export interface WebSocketGateway {
  /** Closes the sockets of a login that ended: a logged-out browser keeps no live view. */
  endLogin(owner: string): void;
  close(): void;
}

/**
 * WebSocket endpoints: `/ws/live` (nodes and processes, pushed) and `/ws/term` (one shell terminal, run
 * as the login's user). Browsers let any page open a WebSocket to any host and send its cookies along,
 * so each upgrade must come from a page of this server (Origin) and carry a valid login session.
 */
export function attachWebSockets(
  server: Server,
  deps: { login: LoginSessions<ClusterLogin>; live: LiveFeed; terminals: TerminalRegistry },
): WebSocketGateway {
  const wss = new WebSocketServer({ noServer: true, maxPayload: WS_MAX_PAYLOAD });
  const byOwner = new Map<string, Set<WebSocket>>();

  const track = (owner: string, ws: WebSocket): void => {
    const set = byOwner.get(owner) ?? new Set<WebSocket>();
    set.add(ws);
    byOwner.set(owner, set);
    ws.once("close", () => {
      set.delete(ws);
      if (set.size === 0 && byOwner.get(owner) === set) byOwner.delete(owner);
    });
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const url = new URL(req.url ?? "/", "http://desktop.invalid");
    if (!sameOrigin(req)) return refuse(socket, 403, "Forbidden: cross-origin WebSocket");
    const entry = deps.login.sessionOf(req);
    if (entry === null) return refuse(socket, 401, "Unauthorized: log in first");
    if (url.pathname !== "/ws/live" && url.pathname !== "/ws/term") return refuse(socket, 404, "Not Found");
    const { id: owner, value: login } = entry;
    login.keepFresh();
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      track(owner, ws);
      if (url.pathname === "/ws/live") {
        deps.live.watch(ws);
        return;
      }
      const wanted = url.searchParams.get("session");
      const existing = wanted === null ? null : deps.terminals.find(wanted, owner);
      try {
        const terminal =
          existing ??
          deps.terminals.open(owner, { cols: size(url.searchParams.get("cols"), 80), rows: size(url.searchParams.get("rows"), 24) }, { ONEOS_SESSION: login.token });
        terminal.attach(ws, existing === null);
      } catch (error) {
        ws.send(JSON.stringify({ type: "error", message: toApiError(error).message }));
        ws.close(1013, "no terminal");
      }
    });
  };
  server.on("upgrade", onUpgrade);
  return {
    endLogin(owner) {
      for (const ws of byOwner.get(owner) ?? []) ws.close(4401, "logged out");
      byOwner.delete(owner);
    },
    close() {
      server.off("upgrade", onUpgrade);
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    },
  };
}
