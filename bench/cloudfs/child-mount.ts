import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** A file system served by a child process that prints `{"ready":true}` once mounted. */
export interface ChildMount {
  readonly child: ChildProcess;
  /** SIGTERM, then wait for the child to unmount and exit. */
  stop(): Promise<void>;
}

/**
 * Starts `script` (a path relative to this file, without extension) under node: the compiled `.js`
 * when running from dist, the `.ts` through tsx when running from source.
 */
export async function startChildMount(script: string, args: readonly string[], timeoutMs = 120_000): Promise<ChildMount> {
  const fromSource = import.meta.url.endsWith(".ts");
  const path = fileURLToPath(new URL(`${script}.${fromSource ? "ts" : "js"}`, import.meta.url));
  const nodeArgs = fromSource ? ["--import", "tsx", path, ...args] : [path, ...args];
  const child = spawn(process.execPath, nodeArgs, { stdio: ["ignore", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout! });
  const ready = await new Promise<{ ready: boolean; error?: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} not ready after ${timeoutMs} ms`)), timeoutMs);
    lines.once("line", (l) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(l) as { ready: boolean; error?: string });
      } catch {
        reject(new Error(`${script}: unexpected output ${l}`));
      }
    });
    child.once("exit", (code) => reject(new Error(`${script} exited with ${code}`)));
  });
  if (!ready.ready) throw new Error(`${script}: ${ready.error ?? "not ready"}`);
  return {
    child,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}
