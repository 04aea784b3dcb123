/**
 * CloudFS errors carry a stable `code` (the POSIX name) and chain `cause`; the one table below maps a
 * code to the negative errno fuse-native expects, so no other file knows errno numbers.
 */
export const FS_ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  EBADF: 9,
  EAGAIN: 11,
  EBUSY: 16,
  EACCES: 13,
  EEXIST: 17,
  EXDEV: 18,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  EFBIG: 27,
  ENOSPC: 28,
  ERANGE: 34,
  EROFS: 30,
  EMLINK: 31,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENODATA: 61,
  EOPNOTSUPP: 95,
} as const;

export type FsErrorCode = keyof typeof FS_ERRNO;

/**
 * An errno answer. It carries no stack trace: most are answers, not faults (a lookup's ENOENT, an
 * xattr's ENODATA), made thousands of times a second while programs work, and capturing a stack was a
 * measurable share of the daemon's time. Its message and `cause` say what failed.
 */
export class FsError extends Error {
  override readonly name = "FsError";
  readonly code: FsErrorCode;
  constructor(code: FsErrorCode, message: string, options?: { cause?: unknown }) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super(`${code}: ${message}`, options);
    } finally {
      Error.stackTraceLimit = limit;
    }
    this.code = code;
  }
}

export function isFsError(err: unknown): err is FsError {
  return err instanceof FsError;
}

/** The negative errno for any thrown value: unknown failures (NATS gone, timeouts) become EIO. */
export function toNegativeErrno(err: unknown): number {
  if (err instanceof FsError) return -FS_ERRNO[err.code];
  return -FS_ERRNO.EIO;
}
