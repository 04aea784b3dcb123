import { KernelError, NODE_NAME_PATTERN } from "../pseudokernel/index.js";
import type { LabelTerm } from "./label-terms.js";
import type { PlacementSpec } from "./placement-spec.js";

/**
 * Services: long-lived processes the leader runtime keeps running. The user writes a definition
 * (`oneos run --name`), the controller writes the status; two keys, so neither overwrites the other.
 * Both live in the scheduler bucket: `service.def.<name>`, `service.status.<name>`.
 */
export type RestartPolicy = "always" | "on-failure" | "never";

export interface ServiceDefinition {
  readonly name: string;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  readonly user: string;
  readonly restart: RestartPolicy;
  readonly placement: PlacementSpec;
  readonly created: number;
}

export type ServiceState = "pending" | "running" | "backoff" | "exited" | "unplaceable";

export interface ServiceStatus {
  readonly name: string;
  readonly state: ServiceState;
  readonly node?: string;
  readonly pid?: number;
  /** Starts after the first. */
  readonly restarts: number;
  /** Quick failures in a row (they lengthen the back-off); reset by a run that lasts. */
  readonly failures: number;
  /** When the current process started, or the state was entered. */
  readonly since: number;
  /** When the next start is due (state backoff / unplaceable). */
  readonly nextStart?: number;
  /** `$?` of the last run, 255 when its node was lost. */
  readonly lastStatus?: number;
  readonly message?: string;
}

export const SERVICE_DEF_PREFIX = "service.def.";
export const SERVICE_STATUS_PREFIX = "service.status.";

/** First restart after a quick failure waits this long, doubling up to the cap (like systemd's RestartSec with a ramp). */
export const BACKOFF_BASE_MS = 1000;
export const BACKOFF_MAX_MS = 30_000;
/** A run at least this long was not a crash loop: the back-off starts over. */
export const STABLE_RUN_MS = 10_000;

/** 0 for the first restart (a node loss, a first crash), then 1 s, 2 s, 4 s ... at most 30 s. */
export function backoffMs(failures: number): number {
  if (failures <= 1) return 0;
  return Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (failures - 2));
}

/** Whether a run that ended with `status` (`lost`: its node went away) is started again. */
export function shouldRestart(policy: RestartPolicy, status: number, lost: boolean): boolean {
  switch (policy) {
    case "always":
      return true;
    case "on-failure":
      return lost || status !== 0;
    case "never":
      return false;
  }
}

export function checkServiceName(name: string): string {
  if (!NODE_NAME_PATTERN.test(name)) throw new KernelError("EINVAL", `service name '${name}': use letters, digits, '-' and '_'`);
  return name;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isStrings(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === "string");
}

/** Validates a stored definition (the bucket is writable by any client: never trust its shape). */
export function parseServiceDefinition(value: unknown): ServiceDefinition {
  const bad = (what: string): never => {
    throw new KernelError("EBADMSG", `service definition: ${what}`);
  };
  if (!isObj(value)) return bad("not an object");
  const { name, argv, env, cwd, user, restart, placement, created } = value;
  if (typeof name !== "string" || !NODE_NAME_PATTERN.test(name)) bad("name");
  if (!isStrings(argv) || argv.length === 0) bad("argv");
  if (!isObj(env) || !Object.values(env).every((v) => typeof v === "string")) bad("env");
  if (typeof cwd !== "string" || !cwd.startsWith("/")) bad("cwd");
  if (typeof user !== "string") bad("user");
  if (restart !== "always" && restart !== "on-failure" && restart !== "never") bad("restart");
  if (typeof created !== "number") bad("created");
  if (!isObj(placement) || !Array.isArray(placement["labels"]) || !isObj(placement["resources"])) bad("placement");
  const p = placement as Record<string, unknown>;
  const resources = p["resources"] as Record<string, unknown>;
  const cpu = resources["cpu"];
  const mem = resources["mem"];
  if (typeof cpu !== "number" || typeof mem !== "number" || !(cpu >= 0) || !(mem >= 0)) bad("resources");
  const labels = (p["labels"] as unknown[]).map((t): LabelTerm => {
    if (!isObj(t) || typeof t["key"] !== "string" || (t["op"] !== "in" && t["op"] !== "notin") || !isStrings(t["values"])) {
      return bad("labels");
    }
    return { key: t["key"], op: t["op"], values: t["values"] };
  });
  const node = p["node"];
  if (node !== undefined && (typeof node !== "string" || !NODE_NAME_PATTERN.test(node))) bad("placement.node");
  return {
    name: name as string,
    argv: argv as string[],
    env: env as Record<string, string>,
    cwd: cwd as string,
    user: user as string,
    restart: restart as RestartPolicy,
    placement: { ...(typeof node === "string" ? { node } : {}), labels, resources: { cpu: cpu as number, mem: mem as number } },
    created: created as number,
  };
}

export function parseServiceStatus(value: unknown): ServiceStatus {
  if (!isObj(value) || typeof value["name"] !== "string" || typeof value["state"] !== "string") {
    throw new KernelError("EBADMSG", "service status: not a status");
  }
  return value as unknown as ServiceStatus;
}

/** The leader's controller answers here with every service and its status (core NATS: current during elections). */
export const SERVICES_LIST_SUBJECT = "oneos.services.list";

/**
 * `oneos services rm` announces a removal here (core NATS) as well as deleting the definition: every
 * controller forgets it at once, even while its bucket watch waits out a JetStream election.
 */
export const SERVICES_FORGET_SUBJECT = "oneos.services.forget";

/** Where a service process's exit event goes (the leader listens). */
export function serviceExitSubject(name: string): string {
  return `oneos.services.exit.${name}`;
}

/** The reply on `SERVICES_LIST_SUBJECT`. */
export interface ServicesList {
  readonly type: "services";
  /** The answering (leader) node. */
  readonly node: string;
  readonly services: readonly { readonly def: ServiceDefinition; readonly status: ServiceStatus | null }[];
}

export function parseServicesList(value: unknown): ServicesList {
  if (!isObj(value) || value["type"] !== "services" || typeof value["node"] !== "string" || !Array.isArray(value["services"])) {
    throw new KernelError("EBADMSG", "services list: malformed");
  }
  return {
    type: "services",
    node: value["node"],
    services: value["services"].map((s: unknown) => {
      if (!isObj(s)) throw new KernelError("EBADMSG", "services list: malformed entry");
      return { def: parseServiceDefinition(s["def"]), status: s["status"] === null || s["status"] === undefined ? null : parseServiceStatus(s["status"]) };
    }),
  };
}
