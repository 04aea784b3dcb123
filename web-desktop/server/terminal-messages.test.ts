import { describe, expect, it } from "vitest";
import { parseTerminalInput } from "./terminal-messages.js";

describe("parseTerminalInput()", () => {
  it("decodes input, resize and ack", () => {
    expect(parseTerminalInput('{"type":"input","data":"ls\\r"}')).toEqual({ type: "input", data: "ls\r" });
    expect(parseTerminalInput('{"type":"resize","cols":80,"rows":24}')).toEqual({ type: "resize", cols: 80, rows: 24 });
    expect(parseTerminalInput('{"type":"ack","bytes":65536}')).toEqual({ type: "ack", bytes: 65536 });
  });

  it("drops malformed messages and absurd sizes", () => {
    for (const text of ["nope", "null", '{"type":"input"}', '{"type":"resize","cols":0,"rows":24}', '{"type":"resize","cols":80.5,"rows":24}', '{"type":"ack","bytes":-1}', '{"type":"exec"}']) {
      expect(parseTerminalInput(text), text).toBeNull();
    }
  });
});
