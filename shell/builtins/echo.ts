import { ansiC } from "../expand.js";
import { print, type Builtin } from "./builtin.js";

/** `echo [-neE] args`: bash's echo (escapes only with -e; `\c` stops the output). */
export const echoBuiltin: Builtin = async (call) => {
  const args = call.argv.slice(1);
  let newline = true;
  let escapes = false;
  while (args.length > 0 && /^-[neE]+$/.test(args[0] ?? "")) {
    for (const flag of (args.shift() ?? "").slice(1)) {
      if (flag === "n") newline = false;
      else if (flag === "e") escapes = true;
      else escapes = false;
    }
  }
  let text = args.join(" ");
  if (escapes) {
    const stop = text.indexOf("\\c");
    if (stop !== -1) {
      text = text.slice(0, stop);
      newline = false;
    }
    text = ansiC(text.replace(/\\0([0-7]{1,3})/g, "\\$1"));
  }
  await print(call.stdout, newline ? `${text}\n` : text);
  return 0;
};
