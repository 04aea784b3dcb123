/**
 * CloudFS: the distributed file system every node mounts with FUSE, stored in JetStream.
 * This file is the folder's whole public face.
 */
export { ensureCloudFsBuckets, defaultReplicas, META_BUCKET, BLOCK_BUCKET, type CloudFsBuckets } from "./buckets.js";
export {
  CloudFsCore,
  DEFAULT_CACHE_BYTES,
  DEFAULT_OP_TIMEOUT_MS,
  type CloudFsCoreOptions,
  type FsStat,
  type FsStatfs,
  type Owner,
} from "./core.js";
export { FsError, FS_ERRNO, isFsError, toNegativeErrno, type FsErrorCode } from "./errors.js";
export { ROOT_CRED, type Cred } from "./permissions.js";
export {
  mountCloudFS,
  cleanStaleMount,
  createFuse,
  FUSE_KNOWS_CALLER,
  DEFAULT_FUSE_TUNING,
  type CloudFsMount,
  type MountCloudFsOptions,
  type FuseInstance,
} from "./mount.js";
export type { FuseOps } from "./fuse-ops.js";
export { cloudFsMountOptions, type FuseMountTuning } from "./fuse-options.js";
export { fsBench, type FsBenchOptions, type FsBenchResult } from "./fs-bench.js";
export { cloudFsNodeStatus, cloudFsUsage, requestNodeStatus, type CloudFsUsage } from "./usage.js";
export type { CloudFsNodeStatus } from "./peer-service.js";
export { encodeName, decodeName } from "./name-codec.js";
export { BLOCK_SIZE } from "./block-math.js";
export { LEASE_TTL_MS } from "./leases.js";
