/**
 * Terminal output as plain text, for the Processes window's output tail: escape sequences (colours,
 * cursor moves, titles) are dropped, what follows a carriage return overwrites the start of its line (so
 * a progress bar shows its last state, as on a terminal), and other control characters go. Anything
 * finer (cursor addressing, alternate screens) is a terminal emulator's job: the Terminal window has one.
 */

// CSI (ESC [ or the C1 byte) with its parameters; OSC, DCS, SOS, PM, APC up to BEL or ST; two-byte escapes.
const ESCAPE = new RegExp(
  [
    String.raw`(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]`,
    String.raw`\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)`,
    String.raw`\x1b[PX^_][^\x1b]*\x1b\\`,
    String.raw`\x1b(?![[\]PX^_])[ -/]*[0-~]`,
  ].join("|"),
  "g",
);

/** The same escapes begun but not finished at the end of the text: the rest comes with the next chunk. */
const UNFINISHED_ESCAPE = new RegExp(
  [
    String.raw`(?:\x1b\[|\x9b)[0-?]*[ -/]*$`,
    String.raw`\x1b\][^\x07\x1b]*\x1b?$`,
    String.raw`\x1b[PX^_][^\x1b]*\x1b?$`,
    String.raw`\x1b[ -/]*$`,
  ].join("|"),
);

/** C0 and C1 controls other than tab and newline (carriage returns are handled before). */
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

/**
 * `text` without escape sequences and control characters, each line as a terminal would leave it after
 * carriage returns (each part after a `\r` is written over the line's start; `\r\n` is a line end).
 *
 * @example
 * toPlainText("\x1b[32mcopying\x1b[0m  5%\rcopying 100%\r\n"); // "copying 100%\n"
 */
export function toPlainText(text: string): string {
  return text
    .replace(ESCAPE, "")
    .replace(UNFINISHED_ESCAPE, "")
    .split("\n")
    .map((line) =>
      line
        .split("\r")
        .map((part) => part.replace(CONTROL, ""))
        .reduce((shown, part) => part + shown.slice(part.length)),
    )
    .join("\n");
}
