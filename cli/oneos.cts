#!/usr/bin/env node
/**
 * The `oneos` command. It runs the CLI from its one-file bundle (scripts/bundle-cli.mjs) with V8's
 * code cache: a verb then starts in about half the time that loading main.js's 150 modules takes
 * (#15: a CLI in kubectl time). Without a bundle (a build that skipped that step) it loads main.js.
 *
 * Node 20 has no `module.enableCompileCache`, and v8-compile-cache makes its cache before the code
 * runs, so it keeps only the top level. This cache is made when a verb's first successful run exits,
 * with every function that run compiled; each verb has its own, so `ps` does not load what the shell
 * compiled (V8 reads a whole cache at once). A read-only install just runs without one.
 *
 * `ps`, `nodes` and `shell -c` go to the user's agent when one listens (agent.ts: it holds the
 * cluster's connections and the root session), and this process loads none of the CLI; the first such
 * call runs here and starts the agent for the next.
 */
import childProcess = require("node:child_process");
import fs = require("node:fs");
import net = require("node:net");
import os = require("node:os");
import path = require("node:path");
import vm = require("node:vm");
import nodeModule = require("node:module");
import wire = require("./agent-wire.cjs");

const bundle = path.join(__dirname, "oneos-bundle.cjs");
const args = process.argv.slice(2);

/**
 * Hands the call to the user's agent (agent.ts) on its socket: the arguments, environment and working
 * directory, then stdin when the agent asks for it, and the signals this process gets; prints what it
 * writes and exits with its status. Without an agent (nothing listens) `fallback` runs.
 */
function runViaAgent(socket: string, fallback: () => void): void {
  const conn = net.connect(socket);
  let connected = false;
  let status: number | undefined;
  conn.once("error", (error) => {
    if (!connected) return fallback();
    process.stderr.write(`oneos: lost the agent: ${error.message}\n`);
    process.exit(1);
  });
  conn.once("connect", () => {
    connected = true;
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    conn.write(wire.frame("H", JSON.stringify({ argv: args, cwd: process.cwd(), env })));
    const reader = new wire.FrameReader();
    conn.on("data", (chunk: Buffer) => {
      for (const [type, payload] of reader.push(chunk)) {
        if (type === "O") {
          if (!process.stdout.write(payload)) {
            conn.pause();
            process.stdout.once("drain", () => conn.resume());
          }
        } else if (type === "R") process.stderr.write(payload);
        else if (type === "W") sendStdin(conn);
        else if (type === "X") status = Number(payload.toString());
      }
    });
    conn.once("close", () => {
      if (status === undefined) process.stderr.write("oneos: the agent went away before the command ended\n");
      const code = status ?? 1;
      process.exitCode = code;
      process.stdout.write("", () => process.exit(code));
    });
    // Its shell ends with the signal, as this process would; a second one does not wait for it.
    for (const signal of wire.HANDED_SIGNALS) {
      const killed = 128 + os.constants.signals[signal];
      process.on(signal, () => {
        if (status !== undefined || conn.destroyed) process.exit(killed);
        status = killed;
        conn.write(wire.frame("S", signal));
      });
    }
    process.stdout.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EPIPE" && !conn.destroyed) conn.write(wire.frame("P"));
    });
  });
}

function sendStdin(conn: net.Socket): void {
  const stdin = process.stdin;
  stdin.on("data", (data: Buffer) => {
    if (!conn.write(wire.frame("I", data))) {
      stdin.pause();
      conn.once("drain", () => stdin.resume());
    }
  });
  stdin.once("end", () => void conn.write(wire.frame("E")));
  stdin.once("error", () => void conn.write(wire.frame("E")));
}

/** Starts the user's agent for the calls after this one (it stays only if it can reach the cluster). */
function startAgent(): void {
  try {
    // Its working directory is /: one inside a CloudFS mount would keep that mount busy.
    childProcess.spawn(process.execPath, [__filename, "agent"], { detached: true, stdio: "ignore", cwd: "/" }).unref();
  } catch {
    // no agent: every call runs in its own process
  }
}

function runBundle(options: { startAgent?: boolean } = {}): void {
  const verb = args.find((arg) => !arg.startsWith("-")) ?? "";
  // The bundler removes these files when it writes a new bundle; V8 rejects another V8's cache itself.
  const cacheFile = `${bundle}.${process.versions.v8}.${/^[a-z]{1,16}$/.test(verb) ? verb : "other"}.cache`;
  let cachedData: Buffer | undefined;
  try {
    cachedData = fs.readFileSync(cacheFile);
  } catch {
    // no cache yet
  }
  const source = fs.readFileSync(bundle, "latin1").replace(/^#!/, "//");
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: bundle,
    ...(cachedData !== undefined ? { cachedData } : {}),
  });
  if (options.startAgent === true) process.once("exit", (status) => status === 0 && startAgent());
  if (cachedData === undefined || script.cachedDataRejected === true) {
    process.once("exit", (status) => {
      if (status !== 0) return;
      const partial = `${cacheFile}.${process.pid}`;
      try {
        fs.writeFileSync(partial, script.createCachedData());
        fs.renameSync(partial, cacheFile);
      } catch {
        fs.rmSync(partial, { force: true });
      }
    });
  }
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
  const module = { exports: {} };
  wrapper(module.exports, nodeModule.createRequire(bundle), module, bundle, __dirname);
}

const socket = wire.agentMayRun(args, process.env) ? wire.agentSocket(wire.homeOf(process.env)) : undefined;
if (!fs.existsSync(bundle)) void import("./main.js");
else if (socket === undefined) runBundle();
else runViaAgent(socket, () => runBundle({ startAgent: true }));
