import { describe, expect, it } from "vitest";
import { MAX_EARLY_BYTES, parseConnectRequest } from "./wire.js";

describe("netstack connect request", () => {
  const base = { type: "connect", port: 8000, toOwner: "abc_DEF-1", toCaller: "xyz" };

  it("carries the client's first bytes when there are some", () => {
    expect(parseConnectRequest(base)).toEqual(base);
    const data = Buffer.from("GET / HTTP/1.0\r\n\r\n");
    expect(parseConnectRequest({ ...base, data }).data).toEqual(data);
    expect(parseConnectRequest({ ...base, data: Buffer.alloc(MAX_EARLY_BYTES) }).data?.length).toBe(MAX_EARLY_BYTES);
  });

  it("refuses first bytes over the bound, or that are not bytes", () => {
    expect(() => parseConnectRequest({ ...base, data: Buffer.alloc(MAX_EARLY_BYTES + 1) })).toThrow(/64 KiB/);
    expect(() => parseConnectRequest({ ...base, data: "GET /" })).toThrow(/data/);
    expect(() => parseConnectRequest({ ...base, data: null })).toThrow(/data/);
  });

  it("refuses stream ids that would be other subjects", () => {
    expect(() => parseConnectRequest({ ...base, toOwner: "a.>" })).toThrow(/stream id/);
  });
});
