import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { afterEach, describe, expect, it } from "vitest";
import { connectReader, DirectServer } from "./direct-link.js";
import { PEER_TIMEOUT_MS } from "./limits.js";
import { PeerLink } from "./peer-link.js";
import { StreamReader } from "./stream-reader.js";
import { StreamWriter } from "./stream-writer.js";

const servers: DirectServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** Two processes' direct servers (here, one process) and a link made between them as the netstack does. */
async function linked(): Promise<{ asker: PeerLink; answerer: PeerLink }> {
  const a = await DirectServer.listen("127.0.0.1");
  const b = await DirectServer.listen("127.0.0.1");
  servers.push(a, b);
  const asking = PeerLink.ask(a);
  const answered = await PeerLink.answer(b, connectReader, asking.id, asking.offer);
  const asker = await asking.complete(connectReader, answered.id, answered.offer);
  return { asker, answerer: answered.link };
}

function sha(buf: Buffer): string {
  return createHash("sha256").update(buf).digest("hex");
}

describe("peer link", () => {
  it("carries requests, replies and publishes both ways; a subject nobody subscribed to is dropped", async () => {
    const { asker, answerer } = await linked();
    answerer.handle("double", async (data) => Buffer.concat([Buffer.from(data), Buffer.from(data)]));
    asker.handle("upper", async (data) => Buffer.from(Buffer.from(data).toString().toUpperCase()));
    expect(Buffer.from(await asker.request("double", Buffer.from("ab"), 2000)).toString()).toBe("abab");
    expect(Buffer.from(await answerer.request("upper", Buffer.from("ab"), 2000)).toString()).toBe("AB");
    await expect(asker.request("nobody", Buffer.from("x"), 2000)).rejects.toThrow(/nobody answers/);
    const got: string[] = [];
    answerer.subscribe("news", (data) => got.push(Buffer.from(data).toString()));
    asker.publish("elsewhere", Buffer.from("lost"));
    asker.publish("news", Buffer.from("one"));
    await asker.request("double", Buffer.from(""), 2000); // frames arrive in order: "one" is in by now
    expect(got).toEqual(["one"]);
    asker.close();
  });

  it("a stream runs over it byte-exact, its writer starting on the credit its reader granted out of band", async () => {
    const { asker, answerer } = await linked();
    const data = randomBytes(9 * 1024 * 1024 + 5);
    const reader = new StreamReader(answerer, "over-link", { windowBytes: 1024 * 1024 });
    const writer = new StreamWriter(asker, "over-link", { credit: 1024 * 1024 });
    const parts: Buffer[] = [];
    reader.on("data", (chunk: Buffer) => parts.push(chunk));
    const ended = new Promise((resolve) => reader.once("end", resolve));
    await pipeline(Readable.from([data]), writer);
    await ended;
    expect(sha(Buffer.concat(parts))).toBe(sha(data));
    asker.close();
  });

  it("when one side closes, both close: pending requests fail with EPEERLOST and close listeners run", async () => {
    const { asker, answerer } = await linked();
    answerer.handle("never", () => new Promise(() => undefined));
    const pending = asker.request("never", Buffer.from("?"), 10_000);
    const closed = new Promise<void>((resolve) => answerer.onClose(resolve));
    let askerClosed = 0;
    asker.onClose(() => askerClosed++);
    answerer.close();
    await expect(pending).rejects.toMatchObject({ code: "EPEERLOST" });
    await closed;
    expect(askerClosed).toBe(1);
    expect(asker.closed && answerer.closed).toBe(true);
    await expect(asker.request("never", Buffer.from("?"), 1000)).rejects.toMatchObject({ code: "EPEERLOST" });
  });

  it("an idle link stays up past the peer timeout: each side says hello while it has nothing to send", async () => {
    const { asker, answerer } = await linked();
    answerer.handle("ping", async () => Buffer.from("pong"));
    await new Promise((resolve) => setTimeout(resolve, PEER_TIMEOUT_MS + 1500));
    expect(asker.closed || answerer.closed).toBe(false);
    expect(Buffer.from(await asker.request("ping", Buffer.alloc(0), 2000)).toString()).toBe("pong");
    asker.close();
  }, 15_000);

  it("a malformed frame closes the link", async () => {
    const { asker, answerer } = await linked();
    const closed = new Promise<void>((resolve) => asker.onClose(resolve));
    answerer.receive(Buffer.from([9, 0]));
    expect(answerer.closed).toBe(true);
    await closed;
  });

  it("the answering side gives up on an asker that never connects back", async () => {
    const a = await DirectServer.listen("127.0.0.1");
    const b = await DirectServer.listen("127.0.0.1");
    servers.push(a, b);
    const asking = PeerLink.ask(a);
    const { link } = await PeerLink.answer(b, connectReader, asking.id, asking.offer);
    const started = Date.now();
    await new Promise<void>((resolve) => link.onClose(resolve));
    expect(link.closed).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(PEER_TIMEOUT_MS - 1000);
    asking.cancel();
  }, 15_000);

  it("refuses to start when the offer's token is wrong", async () => {
    const a = await DirectServer.listen("127.0.0.1");
    const b = await DirectServer.listen("127.0.0.1");
    servers.push(a, b);
    const asking = PeerLink.ask(a);
    const { link } = await PeerLink.answer(b, connectReader, asking.id, { ...asking.offer, token: randomBytes(16) });
    // The asker's server drops the connection with the wrong token: the answerer's link closes.
    await new Promise<void>((resolve) => link.onClose(resolve));
    asking.cancel();
  });
});
