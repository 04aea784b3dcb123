/**
 * Placement: pure functions from (request, cluster state) to a node — filters (node name, state,
 * labels, free resources) then weighted scores (spread or bin-pack, load, pipe locality) — plus the
 * cluster's scheduler settings and service records.
 */
export { allocatableOf, reservedOf, tasksOf, type Candidate } from "./candidate.js";
export { formatPlan, formatPlanFailure } from "./explain.js";
export { formatTerm, parseLabelTerms, termHolds, type LabelTerm } from "./label-terms.js";
export { FILTERS, type FilterName, type PlacementFilter } from "./placement-filters.js";
export { SCORES, STRATEGIES, WEIGHTS, type ScoreContext, type ScoreName, type Strategy } from "./placement-scores.js";
export {
  ANY_NODE,
  formatSpec,
  mergeSpecs,
  parsePlacementPrefix,
  type PlacementPrefix,
  type PlacementSpec,
} from "./placement-spec.js";
export {
  chooseNode,
  placeOrExplain,
  placeProcess,
  planPlacement,
  specOf,
  type NodeVerdict,
  type PlaceOptions,
  type PlacementPlan,
  type PlacementRequest,
} from "./plan.js";
export {
  addResources,
  formatCpu,
  formatMemory,
  formatResources,
  isZero,
  NO_RESOURCES,
  parseCpu,
  parseMemory,
  parseResources,
  type Resources,
} from "./resources.js";
export {
  backoffMs,
  checkServiceName,
  parseServiceDefinition,
  parseServicesList,
  parseServiceStatus,
  SERVICE_DEF_PREFIX,
  serviceExitSubject,
  SERVICES_FORGET_SUBJECT,
  SERVICES_LIST_SUBJECT,
  SERVICE_STATUS_PREFIX,
  shouldRestart,
  STABLE_RUN_MS,
  type RestartPolicy,
  type ServiceDefinition,
  type ServicesList,
  type ServiceState,
  type ServiceStatus,
} from "./service-record.js";
export {
  openSchedulerBucket,
  parseStrategy,
  readStrategy,
  SCHEDULER_BUCKET,
  SchedulerSettings,
  writeStrategy,
} from "./settings.js";
export { Placer, type PlacementTicket } from "./placer.js";
