/** Users, sessions and the audit log, as every runtime serves them. */
export { AuditLog, ensureAuditStream, type AuditEvent } from "./audit.js";
export { AuthService, canControl, mayControl, type Caller } from "./auth-service.js";
export { checkPassword, FIRST_UID, hashPassword, UserStore, type StoredUser } from "./user-store.js";
