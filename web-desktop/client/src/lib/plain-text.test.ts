import { describe, expect, it } from "vitest";
import { toPlainText } from "./plain-text.js";

describe("toPlainText()", () => {
  it("drops colours, cursor moves and window titles", () => {
    expect(toPlainText("\x1b[1;32mgreen\x1b[0m plain\x1b[2K\x1b[10;4H")).toBe("green plain");
    expect(toPlainText("\x1b]0;my title\x07after \x1b]2;t\x1b\\end")).toBe("after end");
    expect(toPlainText("\x1b(Bx\x1b=y\x1b7z")).toBe("xyz");
  });

  it("keeps a line's last state after carriage returns, and treats CRLF as a line end", () => {
    expect(toPlainText(" 10%\r 55%\r100%\r\nnext\r\n")).toBe("100%\nnext\n");
    expect(toPlainText("\x1b[32mcopying\x1b[0m  5%\rcopying 100%\r\n")).toBe("copying 100%\n");
    expect(toPlainText("abcdef\rXY")).toBe("XYcdef");
    expect(toPlainText("a\r\n\r\nb")).toBe("a\n\nb");
  });

  it("hides an escape cut at the end of a chunk until the rest arrives", () => {
    expect(toPlainText("tick 1\n\x1b[3")).toBe("tick 1\n");
    expect(toPlainText("tick 1\n\x1b[3" + "1mtick 2")).toBe("tick 1\ntick 2");
    expect(toPlainText("a\x1b]0;half a tit")).toBe("a");
    expect(toPlainText("a\x1b")).toBe("a");
  });

  it("a stray ESC in the middle hides nothing after it", () => {
    expect(toPlainText("a\x1b\nb\nc")).toBe("a\nb\nc");
  });

  it("drops other control characters but keeps tabs and text", () => {
    expect(toPlainText("a\tb\x07c\x00d\bé✓")).toBe("a\tbcdé✓");
  });
});
