import { KernelError, type SpawnRequest } from "../pseudokernel/index.js";

/** CPU (in cores, fractions allowed) and memory (in bytes) a process asks its node to set aside. */
export type Resources = NonNullable<SpawnRequest["resources"]>;

export const NO_RESOURCES: Resources = { cpu: 0, mem: 0 };

/** Largest request accepted: more than any machine has, small enough to stay exact in a double. */
const MAX_CPU = 4096;
const MAX_MEM = 2 ** 50;

const MEM_UNITS: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  k: 2 ** 10,
  kb: 2 ** 10,
  ki: 2 ** 10,
  kib: 2 ** 10,
  m: 2 ** 20,
  mb: 2 ** 20,
  mi: 2 ** 20,
  mib: 2 ** 20,
  g: 2 ** 30,
  gb: 2 ** 30,
  gi: 2 ** 30,
  gib: 2 ** 30,
  t: 2 ** 40,
  tb: 2 ** 40,
  ti: 2 ** 40,
  tib: 2 ** 40,
};

/** `512M`, `1.5G`, `1048576` → bytes (binary units: 1K = 1024). */
export function parseMemory(text: string): number {
  const match = /^(\d+(?:\.\d+)?)([A-Za-z]*)$/.exec(text.trim());
  const unit = match === null ? undefined : MEM_UNITS[match[2]!.toLowerCase()];
  if (match === null || unit === undefined) {
    throw new KernelError("EINVAL", `mem=${text}: expected a size like 512M, 2G or 1048576`);
  }
  const bytes = Math.ceil(Number(match[1]) * unit);
  if (bytes > MAX_MEM) throw new KernelError("EINVAL", `mem=${text}: too large`);
  return bytes;
}

/** `2`, `0.5`, `500m` (millicores, as Kubernetes writes them) → cores. */
export function parseCpu(text: string): number {
  const milli = /^(\d+)m$/.exec(text);
  const cores = milli !== null ? Number(milli[1]) / 1000 : /^\d+(?:\.\d+)?$/.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(cores) || cores > MAX_CPU) {
    throw new KernelError("EINVAL", `cpu=${text}: expected cores like 2, 0.5 or 500m`);
  }
  return cores;
}

/**
 * Parses `cpu=2,mem=512M` (either part may be left out).
 *
 * @example
 * parseResources("cpu=0.5,mem=1G"); // { cpu: 0.5, mem: 1073741824 }
 */
export function parseResources(text: string): Resources {
  let cpu = 0;
  let mem = 0;
  for (const part of text.split(",")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? "" : part.slice(eq + 1);
    if (key === "cpu") cpu = parseCpu(value);
    else if (key === "mem") mem = parseMemory(value);
    else throw new KernelError("EINVAL", `{${text}}: unknown resource '${key}' (expected cpu=CORES, mem=SIZE)`);
  }
  return { cpu, mem };
}

export function isZero(r: Resources): boolean {
  return r.cpu === 0 && r.mem === 0;
}

export function addResources(a: Resources, b: Resources): Resources {
  return { cpu: a.cpu + b.cpu, mem: a.mem + b.mem };
}

/** Cores print as given (`0.5`), memory in the largest binary unit that keeps one decimal. */
export function formatCpu(cores: number): string {
  return String(Math.round(cores * 1000) / 1000);
}

export function formatMemory(bytes: number): string {
  const units = ["", "K", "M", "G", "T"] as const;
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const text = Number.isInteger(value) ? String(value) : value.toFixed(1);
  return `${text}${units[unit]}`;
}

/** `cpu=2,mem=512M`, leaving out zero parts; `-` for no request. */
export function formatResources(r: Resources): string {
  const parts: string[] = [];
  if (r.cpu > 0) parts.push(`cpu=${formatCpu(r.cpu)}`);
  if (r.mem > 0) parts.push(`mem=${formatMemory(r.mem)}`);
  return parts.length === 0 ? "-" : parts.join(",");
}
