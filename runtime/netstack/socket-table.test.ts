import { describe, expect, it } from "vitest";
import { formatAddress, parseTcpTable } from "./socket-table.js";

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F40 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 1235 1 0000000000000000 20 4 30 10 -1
`;

describe("socket table", () => {
  it("parseTcpTable() keeps only LISTEN rows, with port, address and inode", () => {
    expect(parseTcpTable(TCP)).toEqual([{ port: 8000, address: "0.0.0.0", inode: 1234 }]);
  });
  it("formatAddress() reads the kernel's little-endian words", () => {
    expect(formatAddress("0100007F")).toBe("127.0.0.1");
    expect(formatAddress("00000000000000000000000000000000")).toBe("::");
    expect(formatAddress("00000000000000000000000001000000")).toBe("::1");
    expect(formatAddress("0000000000000000FFFF00000100007F")).toBe("::ffff:127.0.0.1");
  });
});
