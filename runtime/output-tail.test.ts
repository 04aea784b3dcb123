import { describe, expect, it } from "vitest";
import { OutputTail } from "./output-tail.js";

describe("OutputTail", () => {
  it("keeps the last bytes in order and counts all of them", () => {
    const tail = new OutputTail(10);
    for (const part of ["abc", "defg", "hijklmn", "op"]) tail.push(Buffer.from(part));
    const { data, total } = tail.read();
    expect(data.toString()).toBe("ghijklmnop");
    expect(total).toBe(16);
  });

  it("keeps the end of one chunk larger than the limit", () => {
    const tail = new OutputTail(4);
    tail.push(Buffer.from("0123456789"));
    expect(tail.read().data.toString()).toBe("6789");
  });
});
