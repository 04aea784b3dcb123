import { idBuiltin, passwdBuiltin, useraddBuiltin, userdelBuiltin, whoamiBuiltin } from "./accounts.js";
import type { Builtin } from "./builtin.js";
import { cdBuiltin, pwdBuiltin, umaskBuiltin } from "./directory.js";
import { echoBuiltin } from "./echo.js";
import {
  breakBuiltin,
  continueBuiltin,
  evalBuiltin,
  exitBuiltin,
  falseBuiltin,
  returnBuiltin,
  sourceBuiltin,
  trueBuiltin,
} from "./flow.js";
import { historyBuiltin, typeBuiltin } from "./info.js";
import { bgBuiltin, fgBuiltin, jobsBuiltin, killBuiltin, waitBuiltin } from "./job-control.js";
import { testBuiltin } from "./test.js";
import { exportBuiltin, readBuiltin, setBuiltin, unsetBuiltin } from "./variables.js";

const table = new Map<string, Builtin>([
  [":", trueBuiltin],
  ["true", trueBuiltin],
  ["false", falseBuiltin],
  ["cd", cdBuiltin],
  ["pwd", pwdBuiltin],
  ["umask", umaskBuiltin],
  ["echo", echoBuiltin],
  ["exit", exitBuiltin],
  ["return", returnBuiltin],
  ["break", breakBuiltin],
  ["continue", continueBuiltin],
  ["source", sourceBuiltin],
  [".", sourceBuiltin],
  ["eval", evalBuiltin],
  ["export", exportBuiltin],
  ["unset", unsetBuiltin],
  ["set", setBuiltin],
  ["read", readBuiltin],
  ["test", testBuiltin(false)],
  ["[", testBuiltin(true)],
  ["jobs", jobsBuiltin],
  ["wait", waitBuiltin],
  ["fg", fgBuiltin],
  ["bg", bgBuiltin],
  ["kill", killBuiltin],
  ["history", historyBuiltin],
  ["whoami", whoamiBuiltin],
  ["id", idBuiltin],
  ["useradd", useraddBuiltin],
  ["userdel", userdelBuiltin],
  ["passwd", passwdBuiltin],
]);
table.set("type", typeBuiltin((name) => table.has(name)));

/** Every builtin by name. */
export const builtins: ReadonlyMap<string, Builtin> = table;
