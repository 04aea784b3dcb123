/**
 * The netstack agent: a small process the runtime starts INSIDE its node's network namespace (the
 * runtime cannot setns(2) itself: Node is multi-threaded). It listens on proxy ports and connects to
 * local servers there, and hands every TCP connection to the runtime as one unix-socket connection (a
 * unix socket is a file, so it crosses network namespaces). Control travels as JSON lines on stdio:
 * commands on stdin, events on stdout.
 *
 * Half-close rides on the data socket (shutdown(SHUT_WR) both ways); a reset cannot (a unix socket has no
 * RST), so resets travel on the control channel and the data socket is closed only after the reset.
 *
 * Usage: `nsenter --net=NS -- node agent.js DATA_SOCKET`
 */
import { createServer, connect, type Server, type Socket } from "node:net";
import { createInterface } from "node:readline";
import { parseAgentCommand, type AgentEvent } from "./wire.js";

/** After a reset, the data socket gets this long for the runtime to close it before we do. */
const RESET_LINGER_MS = 2000;

const dataSocket = process.argv[2];
if (dataSocket === undefined) {
  process.stderr.write("usage: agent.js DATA_SOCKET\n");
  process.exit(2);
}

const servers = new Map<number, Server>();
const conns = new Map<string, { tcp: Socket; unix: Socket }>();
let nextConn = 0;

function emit(event: AgentEvent): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

/** Joins an accepted or connected TCP socket to a fresh data socket to the runtime. */
function carry(tcp: Socket, conn: string, port: number | undefined): void {
  const unix = connect({ path: dataSocket!, allowHalfOpen: true });
  unix.setNoDelay?.(true);
  unix.write(`${JSON.stringify(port === undefined ? { conn } : { conn, port })}\n`);
  conns.set(conn, { tcp, unix });
  let resetting = false;
  const reset = (): void => {
    if (resetting) return;
    resetting = true;
    emit({ type: "reset", conn });
    tcp.destroy();
    setTimeout(() => unix.destroy(), RESET_LINGER_MS).unref();
  };
  tcp.pipe(unix);
  unix.pipe(tcp);
  tcp.on("error", reset);
  unix.on("error", () => {
    if (!tcp.destroyed) tcp.resetAndDestroy();
  });
  unix.on("close", () => {
    conns.delete(conn);
    // The runtime closed its side without a reset command and before the end: nothing can carry the
    // rest, so the peer must not wait for it.
    if (!tcp.destroyed && !(tcp.readableEnded && unix.readableEnded)) tcp.resetAndDestroy();
  });
}

function listen(port: number): void {
  if (servers.has(port)) return emit({ type: "listening", port });
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (tcp) => {
    tcp.setNoDelay(true);
    carry(tcp, `a${nextConn++}`, port);
    tcp.resume();
  });
  servers.set(port, server);
  server.once("error", (error: NodeJS.ErrnoException) => {
    servers.delete(port);
    emit({ type: "listen-failed", port, code: error.code ?? "EIO" });
  });
  // "::" without ipv6Only: one socket for IPv6 and IPv4 (any address), as a 0.0.0.0 bind would hold it.
  server.listen({ port, host: "::", ipv6Only: false, backlog: 4096 }, () => emit({ type: "listening", port }));
}

function unlisten(port: number): void {
  servers.get(port)?.close();
  servers.delete(port);
}

function connectOut(conn: string, host: string, port: number): void {
  const tcp = connect({ host, port, allowHalfOpen: true, noDelay: true });
  const failed = (error: NodeJS.ErrnoException): void => emit({ type: "connect-failed", conn, code: error.code ?? "EIO" });
  tcp.once("error", failed);
  tcp.once("connect", () => {
    tcp.off("error", failed);
    carry(tcp, conn, undefined);
  });
}

createInterface({ input: process.stdin }).on("line", (line) => {
  let command;
  try {
    command = parseAgentCommand(JSON.parse(line));
  } catch (error) {
    process.stderr.write(`netstack agent: bad command: ${(error as Error).message}\n`);
    return;
  }
  switch (command.type) {
    case "listen":
      return listen(command.port);
    case "unlisten":
      return unlisten(command.port);
    case "connect":
      return connectOut(command.conn, command.host, command.port);
    case "reset": {
      const c = conns.get(command.conn);
      if (c === undefined) return;
      if (!c.tcp.destroyed) c.tcp.resetAndDestroy();
      c.unix.destroy();
      return;
    }
  }
});
// The runtime went away: so do we (and with us every proxy port and connection).
process.stdin.on("end", () => process.exit(0));
