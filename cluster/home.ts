import { homedir } from "node:os";
import { join } from "node:path";

/** Where configuration, credentials and the local test cluster live: `$ONEOS_HOME`, else `~/.oneos`. */
export function oneosHome(env: NodeJS.ProcessEnv = process.env): string {
  const home = env["ONEOS_HOME"];
  return home !== undefined && home !== "" ? home : join(homedir(), ".oneos");
}
