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
 * Opens a file as `who` would (permission checks, and new files owned by them): the kernel checks
 * the user's uid/gid, not the runtime's root. Rejects with an Error whose `code` is the errno name.
 */
export async function openAs(path: string, how: keyof typeof FLAGS, who: FsIdentity, mode = 0o666): Promise<number> {
  return await addon.openAs(path, FLAGS[how], mode, who.uid, who.gid);
}

/** mkdir(2) as `who` would. */
export async function mkdirAs(path: string, who: FsIdentity, mode = 0o777): Promise<void> {
  await addon.mkdirAs(path, mode, who.uid, who.gid);
}
