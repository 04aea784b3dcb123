import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/** Where configuration, credentials and the local test cluster live: `$ONEOS_HOME`, else `~/.oneos`. */
export function oneosHome(env: NodeJS.ProcessEnv = process.env): string {
  const home = env["ONEOS_HOME"];
  return home !== undefined && home !== "" ? home : join(homedir(), ".oneos");
}

/** Where the user's agent (cli/agent.ts) writes its PID, for `oneos cluster down`; its socket is beside it (cli/agent-wire.cts). */
export function agentPidFile(home: string): string {
  return join(home, "agent.pid");
}

/** The PID in the agent's PID file, if there is one (the process may have died since). */
export function readAgentPid(home: string): number | undefined {
  try {
    const pid = Number(readFileSync(agentPidFile(home), "utf8").trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
