import { EventEmitter } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WebSocket } from "ws";
import { ShellTerminal } from "../../web-desktop/server/shell-terminal.js";
import { TERMINAL_HIGH_WATERMARK, TERMINAL_LOW_WATERMARK } from "../../web-desktop/server/limits.js";

/** A browser that never renders (acks) unless told to: it only counts what it was sent. */
class SilentBrowser extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;
  received = 0;
  send(data: Buffer | string): void {
    if (typeof data !== "string") this.received += data.length;
  }
  close(): void {
    this.readyState = 3;
    this.emit("close");
  }
  ack(bytes: number): void {
    this.emit("message", Buffer.from(JSON.stringify({ type: "ack", bytes })), false);
  }
}

const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let dir: string;
let flood: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "oneos-flow-"));
  // Stands in for the CLI: `node FLOOD shell` writes 8 MiB as fast as the PTY takes it.
  flood = join(dir, "flood.mjs");
  await writeFile(flood, "const line = 'x'.repeat(1023) + '\\n'; let left = 8192; const go = () => { while (left > 0) { left--; if (!process.stdout.write(line)) return process.stdout.once('drain', go); } }; go();\n");
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("ShellTerminal flow control", () => {
  it("pauses the PTY when the browser falls behind and resumes it when the browser catches up", async () => {
    const terminal = new ShellTerminal({ cli: flood, env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin" }, cwd: dir, cols: 80, rows: 24, owner: "o", onGone: () => undefined });
    const browser = new SilentBrowser();
    try {
      terminal.attach(browser as unknown as WebSocket, true);
      await settle(1500);
      const stalled = browser.received;
      // Paused: what was sent is bounded by the high watermark plus what the PTY had already read.
      expect(stalled).toBeGreaterThan(TERMINAL_HIGH_WATERMARK);
      expect(stalled).toBeLessThan(TERMINAL_HIGH_WATERMARK + 256 * 1024);
      await settle(500);
      expect(browser.received).toBe(stalled);
      // The browser renders everything it got: the backlog drops under the low watermark and output flows again.
      browser.ack(stalled - TERMINAL_LOW_WATERMARK - 1);
      await settle(300);
      expect(browser.received).toBe(stalled); // the backlog is still LOW + 1: stays paused
      browser.ack(2);
      await settle(1500);
      expect(browser.received).toBeGreaterThan(stalled);
    } finally {
      terminal.close();
    }
  });
});
