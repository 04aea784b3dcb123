import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decode, encode } from "./codec.js";
import { KernelError } from "./errors.js";
import { parseNodeRecord, parseNodeReply, parseNodeRequest, parseProcessRecord, type NodeRecord, type SpawnRequest } from "./messages.js";
import { exitStatusOf, parseSignal } from "./signals.js";
import { decodeFrame, encodeAck, encodeData, encodeEof, encodeOffer, encodeReset } from "./stream/frame.js";

const spawn: SpawnRequest = {
  type: "spawn",
  argv: ["sort", "-rn"],
  env: { PATH: "/usr/bin:/bin" },
  cwd: "/home/root",
  umask: 0o022,
  ppid: 1000,
  stdio: [{ kind: "stream", id: "abc" }, { kind: "file", path: "/home/root/out", mode: "w" }, { kind: "stdout" }],
  notify: "_INBOX.x",
};

/** Every parser must either return a value or throw EBADMSG: never crash with anything else. */
function rejectsCleanly(parse: (v: unknown) => unknown, value: unknown): void {
  try {
    parse(value);
  } catch (error) {
    expect(error).toBeInstanceOf(KernelError);
    expect((error as KernelError).code).toBe("EBADMSG");
  }
}

describe("wire messages", () => {
  it("a spawn request survives encode → decode → parse unchanged", () => {
    expect(parseNodeRequest(decode(encode(spawn)))).toEqual(spawn);
  });

  it("rejects wrong types, missing fields and bad stream ids with EBADMSG", () => {
    for (const bad of [
      null,
      42,
      "spawn",
      [],
      { type: "spawn" },
      { ...spawn, argv: [] },
      { ...spawn, argv: "ls" },
      { ...spawn, umask: 0o1000 },
      { ...spawn, argv: ["ls", "a\0b"] },
      { ...spawn, env: { "PATH\0": "/bin" } },
      { ...spawn, cwd: "/tmp\0" },
      { ...spawn, stdio: [{ kind: "stream", id: "a.b" }, { kind: "null" }, { kind: "null" }] },
      { ...spawn, stdio: [{ kind: "stdout" }, { kind: "null" }, { kind: "null" }] },
      { type: "signal", pid: -1, signal: "TERM", user: "root" },
      { type: "fs", op: "stat", path: "relative/path" },
      { type: "nope" },
    ]) {
      expect(() => parseNodeRequest(bad)).toThrow(KernelError);
    }
  });

  it("any random or mutated payload is parsed or refused with EBADMSG, never anything worse", () => {
    const valid = encode(spawn);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 }), (random, at, byte) => {
        for (const bytes of [random, Uint8Array.from(valid, (b, i) => (i === at ? byte : b)), valid.subarray(0, at)]) {
          let value: unknown;
          try {
            value = decode(bytes);
          } catch {
            continue; // not msgpack at all: the runtime answers EBADMSG for that too
          }
          rejectsCleanly(parseNodeRequest, value);
          rejectsCleanly(parseNodeReply, value);
          rejectsCleanly(parseProcessRecord, value);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe("node records", () => {
  const node: NodeRecord = {
    name: "n1",
    state: "ready",
    labels: {},
    nats: "nats://127.0.0.1:4222",
    pid: 42,
    cpus: 2,
    load: 0.5,
    memTotal: 8 * 2 ** 30,
    memFree: 2 ** 30,
    procs: 3,
    mount: "/var/lib/oneos/n1/mnt",
    heartbeat: 1_700_000_000_000,
    started: 1_700_000_000_000,
  };

  it("carries the node's CloudFS write-back figures through encode → decode → parse, and is whole without them", () => {
    const withFs: NodeRecord = { ...node, cloudfs: { dirtyBytes: 5 * 2 ** 20, oldestDirtyAgeMs: 1200, pendingOps: 17 } };
    expect(parseNodeRecord(decode(encode(withFs)))).toEqual(withFs);
    expect(parseNodeRecord(decode(encode(node)))).toEqual(node);
  });

  it("refuses write-back figures that are not counts with EBADMSG", () => {
    for (const cloudfs of [{ dirtyBytes: -1, oldestDirtyAgeMs: 0, pendingOps: 0 }, { dirtyBytes: 1 }, "dirty", { dirtyBytes: 1.5, oldestDirtyAgeMs: 0, pendingOps: 0 }]) {
      expect(() => parseNodeRecord({ ...node, cloudfs })).toThrow(KernelError);
    }
  });
});

describe("stream frames", () => {
  it("round-trip every frame type", () => {
    expect(decodeFrame(encodeData(5, Buffer.from("hi")))).toMatchObject({ type: "data", offset: 5 });
    expect(decodeFrame(encodeEof(2 ** 40))).toEqual({ type: "eof", offset: 2 ** 40 });
    expect(decodeFrame(encodeReset("EPIPE", "gone"))).toEqual({ type: "reset", code: "EPIPE", message: "gone" });
    expect(decodeFrame(encodeAck({ received: 10, consumed: 4, window: 99, resend: true, eof: false }))).toEqual({
      type: "ack", received: 10, consumed: 4, window: 99, resend: true, eof: false,
    });
    expect(decodeFrame(encodeOffer("127.0.0.1", 4000, Buffer.alloc(16, 7)))).toMatchObject({ type: "offer", host: "127.0.0.1", port: 4000 });
  });

  it("random bytes decode to a frame or EBADMSG", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => rejectsCleanly(decodeFrame, bytes)),
      { numRuns: 5000 },
    );
  });
});

describe("signals and exit status", () => {
  it("accepts INT, SIGINT, sigint and 2 alike", () => {
    for (const s of ["INT", "SIGINT", "sigint", "2"]) expect(parseSignal(s)).toBe("SIGINT");
    expect(() => parseSignal("NOPE")).toThrow(KernelError);
  });

  it("reports a death by signal n as 128+n, as bash does", () => {
    expect(exitStatusOf(null, "SIGTERM")).toBe(143);
    expect(exitStatusOf(null, "SIGKILL")).toBe(137);
    expect(exitStatusOf(3, null)).toBe(3);
  });
});
