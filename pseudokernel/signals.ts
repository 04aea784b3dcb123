import { constants } from "node:os";
import { KernelError } from "./errors.js";

/** The signals a user may send, by name; numbers are Linux's. */
const SIGNALS = constants.signals as Readonly<Record<string, number>>;

/** Accepts `INT`, `SIGINT`, `sigint` or `2`; returns the canonical name (`SIGINT`). */
export function parseSignal(value: string): NodeJS.Signals {
  const upper = value.toUpperCase();
  if (/^\d+$/.test(upper)) {
    const n = Number(upper);
    const name = Object.keys(SIGNALS).find((k) => SIGNALS[k] === n);
    if (name === undefined) throw new KernelError("EINVAL", `unknown signal ${value}`);
    return name as NodeJS.Signals;
  }
  const name = upper.startsWith("SIG") ? upper : `SIG${upper}`;
  if (SIGNALS[name] === undefined) throw new KernelError("EINVAL", `unknown signal ${value}`);
  return name as NodeJS.Signals;
}

export function signalNumber(name: string): number {
  return SIGNALS[name] ?? 0;
}

/** `$?` for a process: its exit code, or 128 + n for a death by signal n (as bash reports it). */
export function exitStatusOf(code: number | null, signal: string | null): number {
  if (signal !== null) return 128 + signalNumber(signal);
  return code ?? 1;
}

export function signalNames(): string[] {
  return Object.keys(SIGNALS);
}
