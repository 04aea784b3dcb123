import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The oneos package's root: the nearest directory above this file whose package.json is oneos's. The
 * same code runs from source (tests) and from `dist/` (the CLI), so paths are found, not assumed.
 */
export function packageRoot(from: string = fileURLToPath(import.meta.url)): string {
  for (let dir = dirname(from); ; dir = dirname(dir)) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, "utf8")) as { name?: unknown }).name === "oneos") return dir;
      } catch {
        // not ours; keep climbing
      }
    }
    if (dirname(dir) === dir) throw new Error(`cannot find the oneos package above ${from}`);
  }
}

/** The Vite build of the browser client. */
export function clientDir(root: string): string {
  return join(root, "web-desktop", "dist-client");
}

/** The built CLI the terminal runs (`node CLI shell`): the `oneos` command's own launcher. */
export function cliPath(root: string): string {
  return join(root, "dist", "cli", "oneos.cjs");
}
