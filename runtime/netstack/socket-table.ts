import { readdir, readFile, readlink } from "node:fs/promises";

/** A TCP socket in LISTEN state, from the kernel's table of one network namespace. */
export interface ListeningSocket {
  readonly port: number;
  readonly address: string;
  readonly inode: number;
}

/** `st` column value of TCP_LISTEN in /proc/net/tcp. */
const TCP_LISTEN = "0A";

/**
 * Every listening TCP socket of the network namespace `pid` is in, read from `/proc/PID/net/tcp` and
 * `tcp6` (the tables are per namespace, so the runtime reads its node's without entering it). No
 * wrapper, no flag: a program that calls listen(2) shows up here.
 */
export async function listeningSockets(pid: number): Promise<ListeningSocket[]> {
  const [v4, v6] = await Promise.all([
    readFile(`/proc/${pid}/net/tcp`, "utf8").catch(() => ""),
    readFile(`/proc/${pid}/net/tcp6`, "utf8").catch(() => ""),
  ]);
  return [...parseTcpTable(v4), ...parseTcpTable(v6)];
}

/** Parses the text of /proc/net/tcp or tcp6 and keeps the LISTEN rows. */
export function parseTcpTable(text: string): ListeningSocket[] {
  const out: ListeningSocket[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[3] !== TCP_LISTEN) continue;
    const [addrHex, portHex] = (f[1] ?? "").split(":");
    if (addrHex === undefined || portHex === undefined) continue;
    out.push({ port: parseInt(portHex, 16), address: formatAddress(addrHex), inode: Number(f[9]) });
  }
  return out;
}

/** The kernel prints addresses as 32-bit words in host (little-endian) order. */
export function formatAddress(hex: string): string {
  const words: number[][] = [];
  for (let i = 0; i < hex.length; i += 8) {
    const w = hex.slice(i, i + 8);
    words.push([6, 4, 2, 0].map((j) => parseInt(w.slice(j, j + 2), 16)));
  }
  const bytes = words.flat();
  if (bytes.length === 4) return bytes.join(".");
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return `::ffff:${bytes.slice(12).join(".")}`;
  }
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  // The longest run of zero groups becomes "::".
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  if (bestLen < 2) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
}

/**
 * Which host processes hold the socket inodes, among the processes in the same network namespace as
 * `nsPid`. Only asked when a new listening socket appears, so the walk over /proc stays rare.
 */
export async function socketOwners(nsPid: number, inodes: ReadonlySet<number>): Promise<Map<number, number>> {
  const owners = new Map<number, number>();
  const ns = await readlink(`/proc/${nsPid}/ns/net`).catch(() => undefined);
  if (ns === undefined || inodes.size === 0) return owners;
  const pids = (await readdir("/proc")).filter((p) => /^\d+$/.test(p));
  await Promise.all(
    pids.map(async (pid) => {
      if ((await readlink(`/proc/${pid}/ns/net`).catch(() => "")) !== ns) return;
      const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
      for (const fd of fds) {
        const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
        const m = /^socket:\[(\d+)\]$/.exec(link);
        if (m !== null && inodes.has(Number(m[1])) && !owners.has(Number(m[1]))) owners.set(Number(m[1]), Number(pid));
      }
    }),
  );
  return owners;
}

/** argv of a host process joined by spaces, or "" when it is gone. */
export async function commandLine(pid: number): Promise<string> {
  const raw = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
  return raw.split("\0").filter((s) => s !== "").join(" ");
}
