/** Placement: pure functions from (request, cluster state) to a node. */
export { placeProcess, type Candidate, type PlacementRequest } from "./placement.js";
