/** Services: the leader runtime's controller that keeps `oneos run --name` processes running. */
export { ServiceController, type ServiceControllerOptions } from "./service-controller.js";
