import { mkdtemp, readFile, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runOneos, runSh } from "./_test-shell.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "oneos-shell-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("pipelines and lists", () => {
  const sameAsSh = [
    "seq 1 20000 | sort -rn | head -3",
    "seq 1 5 | cat | cat | cat",
    "printf 'b\\na\\nc\\n' | sort",
    "true && echo yes || echo no",
    "false && echo yes || echo no",
    "false; echo $?",
    "echo a; echo b; echo c",
    "(echo x; echo y) | sort -r",
    "{ echo 1; echo 2; } | wc -l",
    "for i in 3 1 2; do echo $i; done | sort",
    "seq 1 3 | while read n; do echo \"n=$n\"; done",
    "echo hi | { read x; echo got $x; }",
    "seq 1 100000 | head -1",
    "! false; echo $?",
    "echo $(echo a; echo b) `echo c`",
    "x=$(seq 1 3 | tail -1); echo $x",
  ];
  for (const command of sameAsSh) {
    it(`prints what sh prints: ${command}`, async () => {
      const ours = await runOneos(command);
      const theirs = runSh(command);
      expect(ours.stdout).toBe(theirs.stdout);
      expect(ours.status).toBe(theirs.status);
    });
  }

  it("keeps a 5 MB stream byte-exact through a pipeline", async () => {
    const command = "seq 1 700000 | cat | sort -n | sha256sum";
    expect((await runOneos(command)).stdout).toBe(runSh(command).stdout);
  });

  it("ends `yes | head -1` at once with SIGPIPE for the writer", async () => {
    const run = await runOneos("yes | head -1; echo ${PIPESTATUS[0]}");
    expect(run.stdout).toBe("y\n141\n");
    expect(run.stderr).toBe("");
  });

  it("reports the last stage's status", async () => {
    expect((await runOneos("false | true")).status).toBe(0);
    expect((await runOneos("true | false")).status).toBe(1);
  });
});

describe("redirections", () => {
  it("writes, appends, reads, and separates stderr", async () => {
    const run = await runOneos(
      "echo one > out.txt; echo two >> out.txt; cat < out.txt; ls /nonexistent 2> err.txt; echo status $?; " +
        "sh -c 'echo o; echo e >&2' > both.txt 2>&1; echo builtin > b.txt",
      { cwd: dir },
    );
    expect(run.stdout).toBe("one\ntwo\nstatus 2\n");
    expect(await readFile(join(dir, "out.txt"), "utf8")).toBe("one\ntwo\n");
    expect(await readFile(join(dir, "err.txt"), "utf8")).toMatch(/nonexistent/);
    expect(await readFile(join(dir, "both.txt"), "utf8")).toBe("o\ne\n");
    expect(await readFile(join(dir, "b.txt"), "utf8")).toBe("builtin\n");
  });

  it("sends >&2 to stderr and &> to one file", async () => {
    const run = await runOneos("echo to-err >&2; sh -c 'echo o; echo e >&2' &> all.txt", { cwd: dir });
    expect(run.stderr).toBe("to-err\n");
    expect(await readFile(join(dir, "all.txt"), "utf8")).toBe("o\ne\n");
  });

  it("redirects a compound command once for all its commands", async () => {
    await runOneos("{ echo a; sh -c 'echo b'; echo c; } > group.txt", { cwd: dir });
    expect(await readFile(join(dir, "group.txt"), "utf8")).toBe("a\nb\nc\n");
  });

  it("expands here-documents unless the delimiter is quoted, strips tabs with <<-", async () => {
    const run = await runOneos("X=val\ncat <<EOF\nx=$X $(echo sub)\nEOF\ncat <<'EOF'\nx=$X\nEOF\ncat <<-EOF\n\t\tindented $X\n\tEOF\ncat <<< \"here $X\"");
    expect(run.stdout).toBe("x=val sub\nx=$X\nindented val\nhere val\n");
  });

  it("reports a missing input file", async () => {
    const run = await runOneos("cat < missing.txt", { cwd: dir });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/missing\.txt: No such file or directory/);
  });
});

describe("quoting and expansion", () => {
  const sameAsSh = [
    "echo 'single $HOME' \"double $HOME\" \\$escaped",
    "x='a  b'; echo $x; echo \"$x\"",
    "x='1 2 3'; for i in $x; do echo [$i]; done",
    "unset y; echo ${y:-default} ${y-dash} [${y:+alt}]",
    "y=set; echo ${y:-default} ${y:+alt} ${#y}",
    "z=; echo [${z:-empty}] [${z-unset}]",
    "f=archive.tar.gz; echo ${f%.gz} ${f%%.*} ${f#*.} ${f##*.}",
    "echo $((1 + 2 * 3)) $((10 / 3)) $((7 % 3)) $(( (1 + 2) * 3 )) $((1 < 2 && 3 > 4))",
    "i=0; i=$((i + 1)); echo $i",
    "echo \"$(echo '  spaced  ')\"",
    "echo a\"b\"'c'd",
    "echo \"\" | wc -c",
    "set -- a 'b c' d; echo $#; for a in \"$@\"; do echo [$a]; done",
    "echo ~ ~/x",
    "X=1 sh -c 'echo $X'; echo [$X]",
    "export E=exported; sh -c 'echo $E'",
    "V=1; unset V; echo [${V}]",
    "echo \"a\\\"b\" 'it''s'",
    "case hello in h*o) echo match;; *) echo no;; esac",
    "case x in a|b) echo ab;; x|y) echo xy;; esac",
  ];
  for (const command of sameAsSh) {
    it(`expands as sh does: ${command}`, async () => {
      const ours = await runOneos(command);
      expect(ours.stdout).toBe(runSh(command).stdout);
    });
  }

  it("expands $? $$ and $!", async () => {
    const run = await runOneos("false; echo $?; echo $$; sleep 0 & echo $!; wait");
    const [status, pid, bg] = run.stdout.trim().split("\n");
    expect(status).toBe("1");
    expect(Number(pid)).toBeGreaterThan(0);
    expect(Number(bg)).toBeGreaterThan(0);
  });

  it("supports $'...' and echo -n / -e", async () => {
    const run = await runOneos("echo $'a\\tb'; echo -n x; echo -e 'y\\nz'");
    expect(run.stdout).toBe("a\tb\nxy\nz\n");
  });

  it("fails ${x:?message} with status 1", async () => {
    const run = await runOneos("echo ${nope:?is required}");
    expect(run.status).toBe(1);
    expect(run.stderr).toBe("oneos: nope: is required\n");
  });
});

describe("globbing", () => {
  it("matches * ? and [...] against the file system, sorted, and leaves a non-match as is", async () => {
    const g = join(dir, "glob");
    await mkdir(join(g, "sub"), { recursive: true });
    for (const f of ["a.txt", "b.txt", "c.log", ".hidden.txt", "sub/d.txt"]) await writeFile(join(g, f), "");
    const command = "echo *.txt; echo ?.log; echo [ab].txt; echo */*.txt; echo *.none; echo '*.txt'; echo \"*\".txt";
    const ours = await runOneos(command, { cwd: g });
    expect(ours.stdout).toBe(runSh(command, { cwd: g }).stdout);
    expect(ours.stdout.split("\n")[0]).toBe("a.txt b.txt");
  });
});

describe("control flow", () => {
  const sameAsSh = [
    "if false; then echo a; elif true; then echo b; else echo c; fi",
    "n=0; while [ $n -lt 3 ]; do n=$((n+1)); echo $n; done",
    "n=3; until [ $n -eq 0 ]; do echo $n; n=$((n-1)); done",
    "for i in 1 2 3 4; do if [ $i = 3 ]; then break; fi; echo $i; done",
    "for i in 1 2 3; do [ $i = 2 ] && continue; echo $i; done",
    "f() { echo \"args: $# $1 $2\"; return 3; }; f x y; echo $?",
    "greet() { echo hello $1; }; greet world | tr a-z A-Z",
    "(exit 7); echo $?",
    "(cd /; pwd); pwd | wc -l",
    "set -e; true; false; echo not-reached",
    "set -e; false || true; if false; then :; fi; echo reached",
    "test -d / && echo dir; [ -f /etc/passwd ] && echo file; [ 1 -lt 2 ] && echo lt; [ a != b ] && echo ne",
    "x=5; [ $x -gt 3 -a $x -lt 10 ] && echo inrange",
    "for ((i = 0; i < 3; i++)); do echo $i; done",
  ];
  for (const command of sameAsSh) {
    it(`runs as sh does: ${command}`, async () => {
      const ours = await runOneos(command);
      const theirs = command.includes("((") ? runBash(command) : runSh(command);
      expect(ours.stdout).toBe(theirs.stdout);
      expect(ours.status).toBe(theirs.status);
    });
  }

  it("exits with the status given to exit, and exit in a subshell only leaves it", async () => {
    expect((await runOneos("exit 3; echo no")).status).toBe(3);
    const run = await runOneos("(exit 4); echo after $?");
    expect(run.stdout).toBe("after 4\n");
  });

  it("runs `source` files in the current shell", async () => {
    await writeFile(join(dir, "lib.sh"), "LIBVAR=from-lib\nlibfn() { echo fn $1; }\n");
    const run = await runOneos(". ./lib.sh; echo $LIBVAR; libfn ok", { cwd: dir });
    expect(run.stdout).toBe("from-lib\nfn ok\n");
  });
});

describe("errors and exit codes", () => {
  it("gives 1 for false and 128+n for a death by signal", async () => {
    expect((await runOneos("false")).status).toBe(1);
    expect((await runOneos("sh -c 'kill -TERM $$'")).status).toBe(143);
    expect((await runOneos("sh -c 'kill -INT $$'; echo $?")).stdout).toBe("130\n");
  });

  it("reports an unknown command with 127", async () => {
    const run = await runOneos("no-such-command-xyz arg");
    expect(run.status).toBe(127);
    expect(run.stderr).toBe("oneos: no-such-command-xyz: command not found\n");
  });

  it("keeps a pipeline with an unknown command from hanging", async () => {
    const run = await runOneos("no-such-command-xyz | cat; seq 1 3 | no-such-command-xyz; echo $?");
    expect(run.stdout).toBe("127\n");
  });

  it("reports a syntax error with its position and 2", async () => {
    const run = await runOneos("echo ok\nif true; then echo x; fi fi )");
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/^oneos: syntax error: 2:\d+: /);
    expect(run.stdout).toBe("");
  });
});

describe("cd and pwd", () => {
  it("changes directory, goes back with cd -, and home with a bare cd", async () => {
    const run = await runOneos(`cd ${dir}; pwd; cd /; cd -; cd /usr; cd; echo $PWD; cd /nonexistent-dir; echo $?`, {
      cwd: "/",
      env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: dir },
    });
    expect(run.stdout).toBe(`${dir}\n${dir}\n${dir}\n1\n`);
    expect(run.stderr).toMatch(/cd: \/nonexistent-dir: No such file or directory/);
  });

  it("runs commands in the shell's directory", async () => {
    const run = await runOneos(`cd ${dir} && sh -c pwd`);
    expect(run.stdout).toBe(`${dir}\n`);
  });
});

function runBash(command: string): { stdout: string; status: number } {
  // C-style for loops are bash, not sh.
  return runSh(`bash -c '${command.replace(/'/g, "'\\''")}'`);
}

describe("pipes are closed when a stage cannot start", () => {
  it("does not hang on expansion, redirection or launch failures inside a pipeline", async () => {
    const run = await runOneos(
      "echo ${x:?gone} | cat; cat < /nonexistent | cat; echo hi > /nonexistent/x | cat; nosuch |& cat; seq 1 3 | nosuch; echo end",
    );
    expect(run.stdout).toBe("end\n");
    expect(run.stderr.split("\n").length).toBe(6);
  });
});
