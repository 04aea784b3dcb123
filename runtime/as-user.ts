import { constants } from "node:fs";
import { addon } from "./native-addon.js";

/** A cluster user's file-system identity. */
export interface FsIdentity {
  readonly uid: number;
  readonly gid: number;
}

/** Root: what the runtime itself is. */
export const ROOT_IDENTITY: FsIdentity = { uid: 0, gid: 0 };

const FLAGS = {
  r: constants.O_RDONLY,
  w: constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC,
  a: constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND,
  /** Only resolves the path: needs search permission on every directory on the way, nothing else. */
  path: 0o10000000, // O_PATH (Linux; node:fs does not name it)
  dir: constants.O_RDONLY | constants.O_DIRECTORY,
} as const;

/**
 * `path` below `base` (the directory the user's checks start at), or the whole path from `/`. The
 * runtime's path to a CloudFS file runs through its own state directory, which the user could not
 * search; inside the node's namespace that prefix is not there at all.
 */
function relative(path: string, base: string | undefined): [string, string | undefined] {
  if (base === undefined || !path.startsWith(`${base}/`)) return [path, undefined];
  return [path.slice(base.length + 1), base];
}

/**
 * Opens a file as `who` would (permission checks, and new files owned by them): the kernel checks
 * the user's uid/gid, not the runtime's root — from `base` on, when the path is below it. Rejects with
 * an Error whose `code` is the errno name.
 */
export async function openAs(path: string, how: keyof typeof FLAGS, who: FsIdentity, mode = 0o666, base?: string): Promise<number> {
  const [rel, from] = relative(path, base);
  return from === undefined
    ? await addon.openAs(rel, FLAGS[how], mode, who.uid, who.gid)
    : await addon.openAs(rel, FLAGS[how], mode, who.uid, who.gid, from);
}

/** mkdir(2) as `who` would (from `base` on, as `openAs`). */
export async function mkdirAs(path: string, who: FsIdentity, mode = 0o777, base?: string): Promise<void> {
  const [rel, from] = relative(path, base);
  if (from === undefined) await addon.mkdirAs(rel, mode, who.uid, who.gid);
  else await addon.mkdirAs(rel, mode, who.uid, who.gid, from);
}
