import { posix } from "node:path";
import type { ShellFs } from "./executor.js";
import { patternSource, type Chunk } from "./pattern.js";

/**
 * Filename generation: the paths matching a pattern word, sorted as `sh` sorts them in the C locale,
 * or `[]` when nothing matches (the caller then keeps the word as it is, like bash without nullglob).
 */
export async function globPaths(fs: ShellFs, cwd: string, chunks: readonly Chunk[]): Promise<string[]> {
  const segments = splitSegments(chunks);
  const absolute = segments[0]?.length === 0;
  const start = absolute ? "/" : cwd;
  const rest = absolute ? segments.slice(1) : segments;
  const found = await walk(fs, start, absolute ? "/" : "", rest);
  return found.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

async function walk(fs: ShellFs, dir: string, shown: string, segments: readonly Chunk[][]): Promise<string[]> {
  const [segment, ...rest] = segments;
  if (segment === undefined) return [shown];
  const isLast = rest.length === 0;
  if (segment.length === 0) {
    // `a//b` or a trailing slash: keep it, it only matches directories.
    return isLast ? ((await fs.stat(dir))?.isDirectory ? [`${shown}`] : []) : walk(fs, dir, shown, rest);
  }
  const literal = segment.every((c) => c.quoted || !/[*?[]/.test(c.text));
  const join = (name: string): string => (shown === "" ? name : shown.endsWith("/") ? shown + name : `${shown}/${name}`);
  if (literal) {
    const name = segment.map((c) => c.text).join("");
    const path = posix.join(dir, name);
    const info = await fs.stat(path);
    if (info === null || (!isLast && !info.isDirectory)) return [];
    return walk(fs, path, join(name), rest);
  }
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return [];
  }
  const regex = new RegExp(`^${patternSource(segment, { pathSegment: true })}$`);
  const dotAllowed = segment[0]?.text.startsWith(".") ?? false;
  const results: string[] = [];
  for (const name of names) {
    if (name.startsWith(".") && !dotAllowed) continue;
    if (!regex.test(name)) continue;
    const path = posix.join(dir, name);
    if (!isLast) {
      const info = await fs.stat(path);
      if (info === null || !info.isDirectory) continue;
    }
    results.push(...(await walk(fs, path, join(name), rest)));
  }
  return results;
}

/** Splits a pattern on `/` (quoted or not: a slash is never matched by a pattern). */
function splitSegments(chunks: readonly Chunk[]): Chunk[][] {
  const segments: Chunk[][] = [[]];
  for (const chunk of chunks) {
    const parts = chunk.text.split("/");
    parts.forEach((part, i) => {
      if (i > 0) segments.push([]);
      if (part !== "") segments[segments.length - 1]?.push({ text: part, quoted: chunk.quoted });
    });
  }
  return segments;
}
