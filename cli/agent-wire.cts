/**
 * What the `oneos` command (oneos.cts) and its agent (agent.ts) say on the agent's UNIX socket. Each
 * frame is a type byte, a 4-byte big-endian length, and the payload.
 *
 * command → agent: `H` the call (JSON: argv, cwd, env), then `I` bytes of its stdin, `E` its stdin's
 * end, `S` a signal it got (its name), `P` its stdout is a closed pipe.
 * agent → command: `W` send your stdin (something reads it), `O` stdout bytes, `R` stderr bytes, `X`
 * the exit status (decimal), then the end.
 */
import os = require("node:os");
import path = require("node:path");

const HEADER_BYTES = 5;
/** A frame's payload at most; a bigger length is a broken peer. */
const MAX_PAYLOAD = 16 * 1024 * 1024;

/** The verbs an agent runs (the rest always run in the command's own process). */
const AGENT_VERBS = ["ps", "nodes", "shell"];
/** The signals a command hands to the agent (`S`): each ends the call's shell with 128 + its number. */
const HANDED_SIGNALS: readonly NodeJS.Signals[] = ["SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM"];

function frame(type: string, payload: Uint8Array | string = ""): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload) : payload;
  const head = Buffer.alloc(HEADER_BYTES);
  head.write(type, 0, 1, "latin1");
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** Cuts a byte stream into frames; throws on a frame no peer of ours sends. */
class FrameReader {
  #pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): [string, Buffer][] {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const frames: [string, Buffer][] = [];
    while (this.#pending.length >= HEADER_BYTES) {
      const length = this.#pending.readUInt32BE(1);
      if (length > MAX_PAYLOAD) throw new Error(`agent frame of ${length} bytes`);
      if (this.#pending.length < HEADER_BYTES + length) break;
      frames.push([this.#pending.toString("latin1", 0, 1), this.#pending.subarray(HEADER_BYTES, HEADER_BYTES + length)]);
      this.#pending = this.#pending.subarray(HEADER_BYTES + length);
    }
    return frames;
  }
}

/** ONEOS_HOME as cluster/home.ts finds it (the command needs it before it loads any of the CLI). */
function homeOf(env: NodeJS.ProcessEnv): string {
  const home = env["ONEOS_HOME"];
  return home !== undefined && home !== "" ? home : path.join(os.homedir(), ".oneos");
}

/** The agent's socket for a ONEOS_HOME (a UNIX socket path has at most 107 bytes: undefined past that). */
function agentSocket(home: string): string | undefined {
  const socket = path.join(home, "agent.sock");
  return Buffer.byteLength(socket) <= 107 ? socket : undefined;
}

/**
 * Whether the agent may run this call as the command would: one of its verbs as the first word, with
 * the local cluster's default identity (no --nats, --creds, --user, ONEOS_NATS, ONEOS_CREDS or
 * ONEOS_SESSION), not asking for help, and for `shell` a `-c` line (an interactive shell stays in the
 * command's process, which owns the terminal). ONEOS_NO_AGENT=1 turns the agent off.
 */
function agentMayRun(argv: readonly string[], env: NodeJS.ProcessEnv): boolean {
  const verb = argv[0];
  if (verb === undefined || !AGENT_VERBS.includes(verb)) return false;
  for (const name of ["ONEOS_NO_AGENT", "ONEOS_NATS", "ONEOS_CREDS", "ONEOS_SESSION"]) {
    if ((env[name] ?? "") !== "") return false;
  }
  if (argv.some((arg) => /^(-h|--help|--nats|--creds|--user|--local)(=|$)/.test(arg))) return false;
  return verb !== "shell" || argv.includes("-c");
}

export = { frame, FrameReader, homeOf, agentSocket, agentMayRun, AGENT_VERBS, HANDED_SIGNALS };
