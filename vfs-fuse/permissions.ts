import type { InodeRecord } from "./records.js";

/** Who asks: the FUSE adapter passes ROOT_CRED because the kernel already checked (default_permissions). */
export interface Cred {
  readonly uid: number;
  readonly gid: number;
  readonly groups?: readonly number[];
}

export const ROOT_CRED: Cred = { uid: 0, gid: 0 };

export const R_OK = 4;
export const W_OK = 2;
export const X_OK = 1;

/** Classic UNIX permission check on owner/group/other bits; root bypasses all but "execute nothing". */
export function mayAccess(rec: InodeRecord, cred: Cred, want: number): boolean {
  if (cred.uid === 0) return (want & X_OK) === 0 || rec.type === "dir" || (rec.mode & 0o111) !== 0;
  let bits: number;
  if (cred.uid === rec.uid) bits = (rec.mode >> 6) & 7;
  else if (cred.gid === rec.gid || (cred.groups ?? []).includes(rec.gid)) bits = (rec.mode >> 3) & 7;
  else bits = rec.mode & 7;
  return (bits & want) === want;
}

export function isOwnerOrRoot(rec: InodeRecord, cred: Cred): boolean {
  return cred.uid === 0 || cred.uid === rec.uid;
}
