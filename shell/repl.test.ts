import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runShell } from "./index.js";
import { LocalExecutor } from "./local-executor.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "oneos-repl-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** An interactive session over plain streams: type a line once the prompt is shown. */
function session(historyFile: string) {
  const stdin = new PassThrough();
  let output = "";
  const stdout = new Writable({
    write(chunk: Buffer, _enc, callback) {
      output += chunk.toString("utf8");
      callback();
    },
  });
  const executor = new LocalExecutor({ nodes: ["n1", "n2"] });
  const exited = runShell({
    executor,
    env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: dir },
    cwd: dir,
    home: dir,
    user: "tester",
    interactive: true,
    stdin,
    stdout,
    stderr: stdout,
    historyFile,
  }).finally(() => executor.close());
  const prompts = (): number => output.split("tester@oneos:").length - 1;
  return {
    exited,
    output: () => output,
    /** Types a line at the prompt and waits for the next prompt. */
    async type(line: string): Promise<void> {
      await until(() => prompts() > 0);
      const before = prompts();
      stdin.write(`${line}\n`);
      if (!line.startsWith("exit")) await until(() => prompts() > before);
    },
    /** Types while a command runs (no prompt to wait for). */
    send(text: string): void {
      stdin.write(text);
    },
    end(): void {
      stdin.end();
    },
    async waitPrompt(): Promise<void> {
      await until(() => prompts() > 0);
    },
  };
}

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out waiting for the shell");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("interactive shell", () => {
  it("prompts with user and directory, runs lines, reports Done jobs, and exits on end of input", async () => {
    const historyFile = join(dir, "history");
    const shell = session(historyFile);
    await shell.waitPrompt();
    expect(shell.output()).toBe("tester@oneos:~$ ");
    await shell.type("echo hello");
    await shell.type("sleep 0.1 &");
    await new Promise((resolve) => setTimeout(resolve, 300));
    await shell.type("true");
    shell.send("if true; then\n");
    await until(() => shell.output().endsWith("> "));
    await shell.type("echo continued; fi");
    shell.end();
    expect(await shell.exited).toBe(0);
    const out = shell.output();
    expect(out).toContain("hello\n");
    expect(out).toMatch(/\[1\] \d+\n/);
    expect(out).toContain("[1]+  Done                    sleep 0.1\n");
    expect(out).toContain("> ");
    expect(out).toContain("continued\n");
    expect(await readFile(historyFile, "utf8")).toBe("echo hello\nsleep 0.1 &\ntrue\nif true; then echo continued; fi\n");
  });

  it("loads history from earlier sessions and returns the status given to exit", async () => {
    const historyFile = join(dir, "history2");
    await writeFile(historyFile, "echo earlier\n");
    const shell = session(historyFile);
    await shell.type("history");
    await shell.type("exit 3");
    expect(await shell.exited).toBe(3);
    expect(shell.output()).toContain("    1  echo earlier\n    2  history\n");
  });

  it("feeds typed lines to the foreground job", async () => {
    const shell = session(join(dir, "history3"));
    await shell.waitPrompt();
    const done = shell.type("head -1");
    await new Promise((resolve) => setTimeout(resolve, 300));
    shell.send("typed-line\n");
    await done;
    expect(shell.output()).toContain("typed-line\n");
    shell.end();
    expect(await shell.exited).toBe(0);
  });
});
