/**
 * The pseudokernel: the cluster's kernel as a library — process model, streams, subjects, messages,
 * codecs, errors, and the client every other part talks to the cluster through.
 */
export { openBucket, openClusterBuckets, readAll, waitForJetStream, type ClusterBuckets } from "./buckets.js";
export {
  authSubject,
  MAX_SESSION_MS,
  parseAuthReply,
  parseAuthRequest,
  type AuthReply,
  type AuthRequest,
  type UserInfo,
} from "./auth-messages.js";
export { decode, encode } from "./codec.js";
export { followBucket } from "./follow-bucket.js";
export { guarded, replyTo } from "./nats-handlers.js";
export {
  BugIndicatingError,
  ERROR_CODES,
  fromWireError,
  isErrorCode,
  KernelError,
  toWireError,
  type ErrorCode,
  type WireError,
} from "./errors.js";
export { effectiveNodeState, KernelClient, newStreamId, type Session } from "./kernel-client.js";
export {
  parseClusterPs,
  parseClusterView,
  parseExitEvent,
  parseFileClosed,
  parseNodeRecord,
  parseNodeReply,
  parseNodeRequest,
  parseProcessRecord,
  type AttachRequest,
  type DetachRequest,
  type ExitEvent,
  type FileClosed,
  type FsRequest,
  type OpenRequest,
  type NodeRecord,
  type CloudFsWriteBackFigures,
  type NodeReply,
  type NodeRequest,
  type NodeState,
  type ProcessRecord,
  type ProcessState,
  type RegisterRequest,
  type ResizeRequest,
  type TtySpec,
  type SignalRequest,
  type SpawnRequest,
  type StdioSpec,
} from "./messages.js";
export {
  ROOT_USER,
  SESSION_HEADER,
  signSession,
  USER_NAME_PATTERN,
  verifySession,
  type SessionClaims,
} from "./session.js";
export { connectNats, inboxPrefixOf, loadCredentials, notifyInbox, parseCredentials, type ConnectNatsOptions, type NatsCredentials } from "./nats-connect.js";
export { exitStatusOf, parseSignal, signalNames, signalNumber } from "./signals.js";
export { StreamReader } from "./stream/stream-reader.js";
export { StreamWriter } from "./stream/stream-writer.js";
export { WINDOW_BYTES } from "./stream/limits.js";
export { natsTransport, type StreamTransport } from "./stream/transport.js";
export {
  AUDIT_STREAM,
  AUTH_SUBJECTS,
  auditSubject,
  BUCKETS,
  CLUSTER_PS_LIVE_SUBJECT,
  CLUSTER_PORTS_SUBJECT,
  CLUSTER_PS_SUBJECT,
  CLUSTER_VIEW_SUBJECT,
  HEARTBEAT_WILDCARD,
  heartbeatSubject,
  NODE_NAME_PATTERN,
  NODE_VERBS,
  nodeSubject,
  registeredSignalSubject,
  streamControlSubject,
  streamDataSubject,
} from "./subjects.js";
export { compareNodeNames, DOWN_AFTER_MS, NodeTable, SUSPECT_AFTER_MS, type NodeView } from "./node-table.js";
export { retrying } from "./retry.js";
export { gatherLiveProcesses, ProcessTable, withLiveness } from "./process-table.js";
export { connectDirect, connectReader, DirectServer, writeFrame, type DirectLink, type DirectOffer } from "./stream/direct-link.js";
export { PeerLink, type ConnectReader } from "./stream/peer-link.js";
