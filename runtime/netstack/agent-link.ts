import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";
import { KernelError } from "../../pseudokernel/index.js";
import { parseAgentEvent, parseDataHeader, type AgentCommand, type AgentEvent, type DataHeader } from "./wire.js";

const AGENT = ((): string => {
  const sibling = fileURLToPath(new URL("./agent.js", import.meta.url));
  return existsSync(sibling) ? sibling : fileURLToPath(new URL("../../dist/runtime/netstack/agent.js", import.meta.url));
})();

/** A data socket's header line is tiny; anything longer is not ours. */
const MAX_HEADER_BYTES = 512;
/** The agent prints nothing before it is ready; its first command answers within this. */
const AGENT_START_TIMEOUT_MS = 10_000;
/** Pending data-socket connects; a unix listener refuses (EAGAIN) past its backlog. The kernel caps it at somaxconn. */
const DATA_BACKLOG = 8192;
/** An agent that died is started again after this (its connections are gone; its ports are re-held). */
const AGENT_RESTART_MS = 1000;

export interface AgentLinkOptions {
  /** `/proc/PID/ns/net` to run the agent in. */
  readonly netNamespace: string;
  /** Where the data socket is created (a path both namespaces see). */
  readonly socketPath: string;
  readonly logger: Logger;
  readonly onEvent: (event: AgentEvent) => void;
  readonly onData: (header: DataHeader, socket: Socket) => void;
  /** A new agent replaced one that died: it holds no ports yet. */
  readonly onRestart: () => void;
}

/**
 * The runtime's end of the agent: the child process in the node's network namespace, its control
 * lines, and the unix server on which it delivers one data socket per TCP connection.
 */
export class AgentLink {
  #options: AgentLinkOptions;
  #server: Server;
  #child: ChildProcess | undefined;
  #closing = false;
  #restartTimer: NodeJS.Timeout | undefined;
  #sockets = new Set<Socket>();

  private constructor(options: AgentLinkOptions, server: Server) {
    this.#options = options;
    this.#server = server;
  }

  static async start(options: AgentLinkOptions): Promise<AgentLink> {
    await rm(options.socketPath, { force: true });
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      // Every accepted TCP connection is one connect here: a burst of them must not hit EAGAIN.
      server.listen({ path: options.socketPath, backlog: DATA_BACKLOG }, resolve);
    });
    const link = new AgentLink(options, server);
    server.on("connection", (socket) => link.#accept(socket));
    try {
      await link.#spawn();
    } catch (error) {
      await link.close();
      throw error;
    }
    return link;
  }

  /** The agent's host pid (its listening sockets are not servers of this node). */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  send(command: AgentCommand): void {
    const stdin = this.#child?.stdin;
    if (stdin === undefined || stdin === null || stdin.destroyed) return;
    stdin.write(`${JSON.stringify(command)}\n`);
  }

  async #spawn(): Promise<void> {
    const child = spawn("nsenter", [`--net=${this.#options.netNamespace}`, "--", process.execPath, AGENT, this.#options.socketPath], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    this.#child = child;
    child.stdin!.on("error", () => undefined);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new KernelError("ETIMEDOUT", "netstack agent did not start")), AGENT_START_TIMEOUT_MS);
      child.once("spawn", () => {
        clearTimeout(timer);
        resolve();
      });
      child.once("error", (error) => {
        clearTimeout(timer);
        reject(new KernelError("EIO", `netstack agent: ${error.message}`, { cause: error }));
      });
    });
    createInterface({ input: child.stdout! }).on("line", (line) => {
      try {
        this.#options.onEvent(parseAgentEvent(JSON.parse(line)));
      } catch (error) {
        this.#options.logger.warn({ err: (error as Error).message, line }, "netstack agent: bad event");
      }
    });
    child.once("exit", (code, signal) => {
      if (this.#closing) return;
      this.#options.logger.error({ code, signal }, "netstack agent exited; restarting it");
      this.#restartTimer = setTimeout(() => {
        if (this.#closing) return;
        this.#spawn().then(
          () => this.#options.onRestart(),
          (error: unknown) => this.#options.logger.error({ err: String(error) }, "netstack agent did not restart"),
        );
      }, AGENT_RESTART_MS);
    });
  }

  /** Reads the header line, puts back whatever came after it, and hands the socket on. */
  #accept(socket: Socket): void {
    this.#sockets.add(socket);
    socket.once("close", () => this.#sockets.delete(socket));
    socket.on("error", () => undefined);
    let buffered = Buffer.alloc(0);
    const onReadable = (): void => {
      let chunk: Buffer | null;
      while ((chunk = socket.read() as Buffer | null) !== null) {
        buffered = Buffer.concat([buffered, chunk]);
        const nl = buffered.indexOf(10);
        if (nl < 0) {
          if (buffered.length > MAX_HEADER_BYTES) socket.destroy();
          continue;
        }
        socket.off("readable", onReadable);
        const rest = buffered.subarray(nl + 1);
        if (rest.length > 0) socket.unshift(rest);
        try {
          this.#options.onData(parseDataHeader(JSON.parse(buffered.subarray(0, nl).toString())), socket);
        } catch (error) {
          this.#options.logger.warn({ err: (error as Error).message }, "netstack: bad data socket header");
          socket.destroy();
        }
        return;
      }
    };
    socket.on("readable", onReadable);
  }

  async close(): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#restartTimer);
    const child = this.#child;
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGKILL");
      await exited;
    }
    for (const s of this.#sockets) s.destroy();
    await new Promise((r) => this.#server.close(r));
    await rm(this.#options.socketPath, { force: true });
  }
}
