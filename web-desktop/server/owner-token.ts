import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/**
 * The machine owner's fast path: a random token printed in the desktop's URL (as Jupyter does) that
 * logs in as root without a password. It exists only when the desktop was given the cluster's admin
 * credentials — which only the cluster's owner can read — so it grants nothing its holder could not
 * already do with `oneos shell`.
 */
export class OwnerToken {
  readonly token: string;
  readonly #digest: Buffer;

  constructor(token: string = randomBytes(24).toString("hex")) {
    this.token = token;
    this.#digest = digest(token);
  }

  /** Constant-time check of a presented token. */
  matches(candidate: unknown): boolean {
    if (typeof candidate !== "string" || candidate.length === 0 || candidate.length > 256) return false;
    return timingSafeEqual(digest(candidate), this.#digest);
  }
}
