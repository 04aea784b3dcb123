import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestCluster, type TestCluster } from "../harness/oneos-cluster.js";
import { PtyDriver } from "../harness/pty-driver.js";
import { Rng } from "./fuzz-payloads.js";

/**
 * Shell input of any bytes never crashes the shell: random bytes, control characters, invalid UTF-8,
 * escape sequences, huge lines, unbalanced quotes, arithmetic and here-doc openers typed into the
 * interactive shell on a real terminal; hostile command lines to `oneos shell -c` and on stdin.
 */

const SEED = Number(process.env["FUZZ_SEED"] ?? Date.now() % 2 ** 31);
/** Bytes typed in total (at least 10,000). */
const TYPED_BYTES = 16_000;
const PROMPT = /root@oneos:~\$ $/;
/** A JavaScript stack frame: what the shell printing an internal error (instead of a message) looks like. */
const STACK_FRAME = /^\s+at .+(\.js|\.ts):\d+:\d+\)?$/m;

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await startTestCluster();
});

afterAll(async () => {
  await cluster?.close();
});

/** Pieces a user (or a cat on the keyboard) may type. None is ^D (EOF ends a shell legitimately) nor `exit`. */
const FRAGMENTS: readonly (string | Buffer)[] = [
  "$((",
  "$((1/0))",
  "$(( 2**64 * 2**64 ))",
  "$((x=",
  "$(",
  "${",
  "${x:?boom}",
  "${x/",
  "`",
  '"unbalanced',
  "'unbalanced",
  "cat <<EOF\r",
  "cat <<'EOF'\rline\r",
  "<<<",
  "|||",
  "&&&",
  ";;",
  "((",
  "))",
  "{ ",
  "}",
  "if then fi",
  "for x in; do",
  "case x in",
  "@",
  "@ echo",
  "@../../etc echo",
  "@n9 echo",
  "@n1@n2 echo",
  "@%s echo",
  "@\u0000 echo",
  "echo {1..2000}",
  "x=$(printf '%0100000d' 0)",
  "\u001b[A\u001b[B\u001b[C\u001b[D",
  "\u001b[200~pasted\u001b[201~",
  "\u001bOP\u001b[15~\u001b[3~",
  "\u001b]0;title\u0007",
  "\u001b[6n",
  "\u001bc",
  "\u0000",
  Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xe2, 0x82, 0xf0, 0x90, 0x80]),
  Buffer.from([0xc0, 0xaf, 0xed, 0xa0, 0x80]),
  "\u0003",
  "\u0015",
  "\u0017",
  "\u000b",
  "\u0019",
  "\u0012",
  "\t\t",
  "\u001a",
  "\u001c",
  "\u007f\u007f\u007f",
  "😀\u202e\u0301",
  "*".repeat(200),
  "/*/*/*/*",
  "~nosuchuser/x",
  "!!",
  "\\",
  "\r",
];

/** A chunk of hostile keystrokes: random bytes (no ^D), a fragment, or a huge line. */
function chunk(rng: Rng): Buffer {
  const roll = rng.int(10);
  if (roll < 4) {
    const bytes = Buffer.from(rng.bytes(1 + rng.int(64)));
    for (let i = 0; i < bytes.length; i++) if (bytes[i] === 0x04) bytes[i] = 0x05;
    return bytes;
  }
  if (roll === 4) return Buffer.from("y".repeat(2000 + rng.int(3000)));
  const f = rng.pick(FRAGMENTS);
  return typeof f === "string" ? Buffer.from(f) : f;
}

describe("the shell takes any input", () => {
  it(`${TYPED_BYTES} bytes of random and hostile keystrokes: the shell lives and runs echo ok`, async () => {
    const d = new PtyDriver(["shell"], { home: cluster.home });
    try {
      await d.waitFor(PROMPT, { timeoutMs: 30_000 });
      const rng = new Rng(SEED);
      let typed = 0;
      /** The last keystrokes, for the failure message (what state the shell was in when it went). */
      const recent: string[] = [];
      let exited: { exitCode: number } | undefined;
      void d.exited().then((e) => (exited = e));
      while (typed < TYPED_BYTES && exited === undefined) {
        const bytes = chunk(rng);
        d.pty.write(bytes);
        typed += bytes.length;
        // Now and then the line is entered or cancelled, so the parser, expansion and the executor see it.
        const end = rng.int(4);
        if (end === 0) d.type("\r");
        else if (end === 1) d.type("\u0003");
        recent.push(JSON.stringify(bytes.toString("latin1").slice(0, 80)) + ["\\r", "^C", "", ""][end]!);
        if (recent.length > 12) recent.shift();
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(exited, `the shell exited after ${typed} bytes (seed ${SEED}); last typed:\n${recent.join("\n")}\nscreen:\n${d.text.slice(-1500)}`).toBeUndefined();
      expect(typed).toBeGreaterThanOrEqual(10_000);

      // Out of whatever state the garbage left (a here-doc, a continuation line, a remote `cat`): ^C, then a command.
      let ok = false;
      for (let attempt = 0; attempt < 10 && !ok; attempt++) {
        d.type("\u0003");
        await new Promise((r) => setTimeout(r, 300));
        const from = d.mark();
        d.type("echo ok-$((6*7))\r");
        ok = await d.waitFor("ok-42", { from, timeoutMs: 10_000 }).then(() => true, () => false);
      }
      expect(ok, `the shell answers after the garbage (seed ${SEED}); screen:\n${d.text.slice(-2000)}`).toBe(true);
      expect(exited).toBeUndefined();
      expect(d.text, "an internal error shown as a stack trace").not.toMatch(STACK_FRAME);
    } finally {
      d.kill("SIGKILL");
    }
  }, 180_000);

  it("hostile `oneos shell -c` lines fail with a clear message and a non-zero status, never a stack trace", async () => {
    const cases: readonly { line: string; message: RegExp }[] = [
      { line: 'echo "unbalanced', message: /quote|unclosed|reached EOF|syntax/i },
      { line: "echo 'unbalanced", message: /quote|unclosed|reached EOF|syntax/i },
      { line: "echo $((", message: /syntax|unexpected|reached EOF|unclosed|arithmetic/i },
      { line: "echo $((1/0))", message: /division|divide|zero/i },
      { line: "if then", message: /syntax|unexpected|reached EOF|then/i },
      { line: "cat <<EOF", message: /here-doc|heredoc|EOF|unclosed|syntax/i },
      { line: "@n9 echo hi", message: /n9/ },
      { line: "@ echo hi", message: /@|node|syntax/i },
      { line: "@../../etc echo hi", message: /node|\.\./i },
      { line: "@n1@n2 echo hi", message: /node|n1@n2|@/i },
      { line: "@\u0001\u007f echo hi", message: /node|@/i },
      { line: `@${"n".repeat(100)} echo hi`, message: /node|nnnn/i },
      { line: "nosuchcommand-xyz", message: /not found/ },
      { line: `${"z".repeat(100_000)}`, message: /command not found/ },
    ];
    for (const { line, message } of cases) {
      const r = await cluster.sh(line, { timeoutMs: 30_000 });
      const shown = JSON.stringify(line.slice(0, 60));
      expect(r.status, `${shown}: status (stderr: ${r.stderr.slice(0, 300)})`).not.toBe(0);
      expect(r.status, `${shown}: killed rather than failed`).toBeLessThan(128);
      expect(r.stderr, `${shown}: message`).toMatch(message);
      expect(r.stderr + r.stdout, `${shown}: stack trace`).not.toMatch(STACK_FRAME);
    }
  }, 180_000);

  it("a 1 MiB line on the shell's stdin fails cleanly: unbalanced, an unknown node, an overlong command", async () => {
    const mib = 1024 * 1024;
    const cases: readonly { script: string; message: RegExp }[] = [
      { script: `echo "${"a".repeat(mib)}\n`, message: /quote|unclosed|reached EOF|syntax/i },
      { script: `@${"n".repeat(mib)} echo hi\n`, message: /node/i },
      { script: `${"x".repeat(mib)}\n`, message: /too long/ },
    ];
    for (const { script, message } of cases) {
      const r = await cluster.oneos(["shell"], { input: script, timeoutMs: 60_000 });
      const shown = JSON.stringify(script.slice(0, 20));
      expect(r.status, `${shown}: status (stderr: ${r.stderr.slice(0, 300)})`).not.toBe(0);
      expect(r.status, `${shown}: killed rather than failed`).toBeLessThan(128);
      expect(r.stderr.slice(0, 2000), `${shown}: message`).toMatch(message);
      expect(r.stderr.length, `${shown}: the error does not echo the megabyte back many times`).toBeLessThan(4 * mib);
      expect(r.stderr + r.stdout, `${shown}: stack trace`).not.toMatch(STACK_FRAME);
    }
    // And the cluster is fine after.
    const after = await cluster.sh("@n2 echo ok");
    expect(after.stdout).toBe("ok\n");
  }, 180_000);
});
