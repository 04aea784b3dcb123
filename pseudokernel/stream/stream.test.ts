import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, expect, it } from "vitest";
import { KernelError } from "../errors.js";
import { connectDirect, DirectServer } from "./direct-link.js";
import { memoryTransport } from "./memory-transport.js";
import { StreamReader } from "./stream-reader.js";
import { StreamWriter } from "./stream-writer.js";

function sha(buf: Buffer): string {
  return createHash("sha256").update(buf).digest("hex");
}

async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of r) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

describe("stream", () => {
  it("delivers bytes in order and ends with EOF over a perfect bus", async () => {
    const bus = memoryTransport();
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const reader = new StreamReader(bus, "s1");
    const writer = new StreamWriter(bus, "s1");
    const got = collect(reader);
    await pipeline(Readable.from([data.subarray(0, 1000), data.subarray(1000)]), writer);
    expect(sha(await got)).toBe(sha(data));
  });

  it("stays byte-exact when the bus drops and duplicates messages", async () => {
    const bus = memoryTransport({ dropRate: 0.1, duplicateRate: 0.05, random: seeded(42) });
    const data = randomBytes(2 * 1024 * 1024);
    const reader = new StreamReader(bus, "lossy");
    const writer = new StreamWriter(bus, "lossy");
    const got = collect(reader);
    await pipeline(Readable.from(chunks(data, 50_000)), writer);
    expect(sha(await got)).toBe(sha(data));
    expect(bus.dropped).toBeGreaterThan(0);
  }, 60_000);

  it("a stream whose first bytes came out of band (reader `initial`, writer `startOffset`) continues after them, over a lossy bus", async () => {
    const bus = memoryTransport({ dropRate: 0.1, duplicateRate: 0.05, random: seeded(7) });
    const data = randomBytes(600_000);
    const first = data.subarray(0, 100);
    // The writer first (as a netstack caller makes it), the reader later: the first credits are lost.
    const writer = new StreamWriter(bus, "early", { startOffset: first.length });
    const done = pipeline(Readable.from(chunks(data.subarray(first.length), 30_000)), writer);
    await new Promise((r) => setTimeout(r, 20));
    const reader = new StreamReader(bus, "early", { initial: first });
    expect(sha(await collect(reader))).toBe(sha(data));
    await done;
  }, 60_000);

  it("works when the writer starts before the reader subscribes", async () => {
    const bus = memoryTransport();
    const writer = new StreamWriter(bus, "late");
    const done = pipeline(Readable.from([Buffer.from("hello")]), writer);
    await new Promise((r) => setTimeout(r, 100));
    const reader = new StreamReader(bus, "late");
    expect((await collect(reader)).toString()).toBe("hello");
    await done;
  });

  it("an empty stream ends without waiting for the reader's credit, and also when the reader comes late", async () => {
    const bus = memoryTransport();
    // Nothing the reader says reaches the writer: the EOF must go out on the writer's own initiative.
    const deaf = { ...bus, publish: (subject: string, data: Uint8Array) => (subject.endsWith(".r") ? undefined : bus.publish(subject, data)) };
    const reader = new StreamReader(deaf, "empty");
    const writer = new StreamWriter(deaf, "empty");
    writer.end();
    expect((await collect(reader)).length).toBe(0);
    writer.destroy();
    // Nobody listens yet when the EOF goes out: the reader's first word brings it again.
    const early = new StreamWriter(bus, "empty-late");
    early.end();
    await new Promise((r) => setTimeout(r, 50));
    const late = new StreamReader(bus, "empty-late");
    expect((await collect(late)).length).toBe(0);
    await new Promise<void>((resolve) => early.once("finish", resolve));
  });

  it("never lets the writer run more than a window ahead of a stalled consumer", async () => {
    const bus = memoryTransport();
    const window = 256 * 1024;
    const reader = new StreamReader(bus, "slow", { windowBytes: window });
    const writer = new StreamWriter(bus, "slow", { highWaterMark: 16 * 1024 });
    const source = Readable.from(chunks(Buffer.alloc(8 * 1024 * 1024), 64 * 1024));
    void pipeline(source, writer).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300)); // nobody reads the reader meanwhile
    expect(writer.bytesSent).toBeLessThanOrEqual(window);
    expect(writer.bytesSent).toBeGreaterThan(0);
    reader.destroy();
    writer.destroy();
  });

  it("fails the writer with EPIPE when the reader goes away", async () => {
    const bus = memoryTransport();
    const reader = new StreamReader(bus, "gone");
    const writer = new StreamWriter(bus, "gone");
    const failed = new Promise<unknown>((resolve) => writer.on("error", resolve));
    const endless = new Readable({ read() { this.push(Buffer.alloc(65536)); } });
    endless.pipe(writer);
    reader.once("data", () => reader.destroy());
    const error = await failed;
    expect(error).toBeInstanceOf(KernelError);
    expect((error as KernelError).code).toBe("EPIPE");
    endless.destroy();
  });

  it("fails the reader with ECONNRESET when the writer aborts", async () => {
    const bus = memoryTransport();
    const reader = new StreamReader(bus, "abort");
    const writer = new StreamWriter(bus, "abort");
    const failed = new Promise<unknown>((resolve) => reader.on("error", resolve));
    writer.on("error", () => undefined); // the writer's own abort is the point of the test
    reader.resume();
    writer.write(Buffer.from("partial"));
    await new Promise((r) => setTimeout(r, 50));
    writer.destroy(new Error("producer's node lost"));
    const error = (await failed) as KernelError;
    expect(error.code).toBe("ECONNRESET");
    expect(error.message).toContain("producer's node lost");
  });

  it("an empty stream ends cleanly", async () => {
    const bus = memoryTransport();
    const reader = new StreamReader(bus, "empty");
    const writer = new StreamWriter(bus, "empty");
    writer.end();
    expect((await collect(reader)).length).toBe(0);
    await new Promise<void>((resolve) => writer.on("finish", resolve));
  });
});

describe("direct link", () => {
  it("moves a big stream off the bus once past the threshold, byte-exact", async () => {
    const server = await DirectServer.listen("127.0.0.1");
    try {
      const bus = memoryTransport({ directServer: server, direct: true });
      const data = randomBytes(16 * 1024 * 1024);
      const reader = new StreamReader(bus, "direct");
      const writer = new StreamWriter(bus, "direct");
      const got = collect(reader);
      await pipeline(Readable.from(chunks(data, 64 * 1024)), writer);
      expect(sha(await got)).toBe(sha(data));
      expect(bus.bytes).toBeLessThan(data.length / 2); // most bytes went over the link
    } finally {
      await server.close();
    }
  });

  it("falls back to the bus when the link breaks, losing nothing", async () => {
    const server = await DirectServer.listen("127.0.0.1");
    const bus = memoryTransport({ directServer: server, direct: true });
    const data = randomBytes(12 * 1024 * 1024);
    const reader = new StreamReader(bus, "broken");
    const writer = new StreamWriter(bus, "broken");
    const got = collect(reader);
    let sent = 0;
    const source = Readable.from(
      (function* () {
        for (const c of chunks(data, 64 * 1024)) {
          sent += c.length;
          if (sent === 6 * 1024 * 1024) void server.close(); // every link socket is destroyed
          yield c;
        }
      })(),
    );
    await pipeline(source, writer);
    expect(sha(await got)).toBe(sha(data));
  });

  it("refuses a connection that does not present the stream's token", async () => {
    const server = await DirectServer.listen("127.0.0.1");
    try {
      const frames: Uint8Array[] = [];
      const offer = server.register("tok", (f) => frames.push(f));
      const link = await connectDirect({ ...offer, token: Buffer.alloc(16) }, "tok");
      const closed = new Promise<void>((resolve) => link.onClose(resolve));
      link.send(Buffer.from([5]));
      await closed;
      expect(frames).toHaveLength(0);
    } finally {
      await server.close();
    }
  });
});

/** A deterministic generator (mulberry32), so the drops a test sees are the same every run. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function* chunks(data: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}
