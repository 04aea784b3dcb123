import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { LaunchError, type LaunchRequest } from "./executor.js";
import { Interpreter } from "./interpreter.js";
import { LocalExecutor } from "./local-executor.js";

const executors: LocalExecutor[] = [];
function executor(): LocalExecutor {
  const e = new LocalExecutor({ nodes: ["n1", "n2"], labels: { n2: { disk: "ssd" } } });
  executors.push(e);
  return e;
}
afterEach(() => {
  for (const e of executors.splice(0)) e.close();
});

class Collect extends Writable {
  text = "";
  override _write(chunk: Buffer, _enc: BufferEncoding, callback: () => void): void {
    this.text += chunk.toString("utf8");
    callback();
  }
}

function request(argv: string[], overrides: Partial<LaunchRequest> = {}): LaunchRequest {
  return {
    argv,
    env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin" },
    cwd: "/",
    umask: 0o022,
    placement: { kind: "auto" },
    stdin: { kind: "null" },
    stdout: { kind: "null" },
    stderr: { kind: "null" },
    ...overrides,
  };
}

async function launchError(promise: Promise<unknown>): Promise<LaunchError> {
  try {
    await promise;
  } catch (err: unknown) {
    if (err instanceof LaunchError) return err;
    throw err;
  }
  throw new Error("launch did not fail");
}

describe("LocalExecutor", () => {
  it("rejects an unknown command with ENOCMD and an unknown node with ENONODE", async () => {
    const e = executor();
    expect((await launchError(e.launch(request(["no-such-xyz"])))).code).toBe("ENOCMD");
    const noNode = await launchError(e.launch(request(["true"], { placement: { kind: "node", node: "n9" } })));
    expect(noNode.code).toBe("ENONODE");
    expect(noNode.message).toBe("oneos: unknown node 'n9' (known: n1, n2)");
    const noLabel = await launchError(e.launch(request(["true"], { placement: { kind: "label", key: "gpu", value: "1" } })));
    expect(noLabel.code).toBe("EPLACE");
  });

  it("places by label and reports the node", async () => {
    const handle = await executor().launch(request(["true"], { placement: { kind: "label", key: "disk", value: "ssd" } }));
    expect(handle.node).toBe("n2");
    expect((await handle.wait()).status).toBe(0);
  });

  it("joins stderr to stdout in order with { kind: 'stdout' }", async () => {
    const out = new Collect();
    const handle = await executor().launch(
      request(["sh", "-c", "echo 1; echo 2 >&2; echo 3"], { stdout: { kind: "writable", stream: out }, stderr: { kind: "stdout" } }),
    );
    await handle.wait();
    expect(out.text.split("\n").sort().join(",")).toBe(",1,2,3");
  });

  it("signals the whole process group and reports 128+n", async () => {
    const handle = await executor().launch(request(["sh", "-c", "sleep 10; true"]));
    await handle.signal("SIGTERM");
    expect(await handle.wait()).toEqual({ status: 143, signal: "SIGTERM" });
  });
});

describe("foreground interruption", () => {
  it("sends Ctrl-C to every process of the foreground pipeline and gives 130", async () => {
    const out = new Collect();
    const interpreter = new Interpreter({
      executor: executor(),
      env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin" },
      cwd: "/",
      home: "/",
      interactive: false,
      io: { stdin: { kind: "null" }, stdout: { kind: "writable", stream: out }, stderr: { kind: "writable", stream: out } },
    });
    const started = Date.now();
    const running = interpreter.run("sleep 10 | sleep 10; echo after $?");
    await new Promise((resolve) => setTimeout(resolve, 200));
    await interpreter.interrupt("SIGINT");
    const result = await running;
    expect(Date.now() - started).toBeLessThan(2000);
    // As in bash, the rest of the interrupted command line is dropped.
    expect(out.text).toBe("");
    expect(result.status).toBe(130);
    expect((await interpreter.run("echo $?")).status).toBe(0);
    expect(out.text).toBe("130\n");
  });
});
