/** Browser → server messages on a terminal's WebSocket (text frames, JSON). Output goes the other way as binary frames. */
export type TerminalInput =
  | { readonly type: "input"; readonly data: string }
  | { readonly type: "resize"; readonly cols: number; readonly rows: number }
  /** Bytes of output the browser has rendered since its last ack (flow control). */
  | { readonly type: "ack"; readonly bytes: number };

/** Server → browser control messages (text frames, JSON). */
export type TerminalNotice =
  | { readonly type: "attached"; readonly session: string; readonly fresh: boolean }
  | { readonly type: "exit"; readonly code: number; readonly signal: number | null }
  | { readonly type: "error"; readonly message: string };

/** Terminal sizes outside this are refused (a PTY of 0 columns, or of a million, is a bug or an attack). */
const MAX_DIMENSION = 1000;

function dimension(value: unknown): number | null {
  return typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= MAX_DIMENSION ? value : null;
}

/** Decodes and validates one message; null for anything malformed (the caller drops it). */
export function parseTerminalInput(text: string): TerminalInput | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (value === null || typeof value !== "object") return null;
  const o = value as Record<string, unknown>;
  switch (o["type"]) {
    case "input":
      return typeof o["data"] === "string" ? { type: "input", data: o["data"] } : null;
    case "resize": {
      const cols = dimension(o["cols"]);
      const rows = dimension(o["rows"]);
      return cols !== null && rows !== null ? { type: "resize", cols, rows } : null;
    }
    case "ack": {
      const bytes = o["bytes"];
      return typeof bytes === "number" && Number.isInteger(bytes) && bytes >= 0 ? { type: "ack", bytes } : null;
    }
    default:
      return null;
  }
}
