/** The local test cluster and deployment helpers. */
export { oneosHome } from "./home.js";
export { freePort } from "./free-port.js";
export { LocalCluster, type NodeStatus } from "./local-cluster.js";
export {
  CLIENT_IDENTITIES,
  credentialsFile,
  ensureClusterCredentials,
  issueServerCert,
  nodeIdentity,
  type NatsSecurity,
} from "./cluster-credentials.js";
export { permissionsOf, type SubjectPermissions } from "./nats-permissions.js";
export { MAX_PAYLOAD_BYTES, natsServerConfig, startNatsServer, waitForPort, type NatsServerSpec } from "./nats-server.js";
export { planNatsCluster } from "./nats-cluster-plan.js";
