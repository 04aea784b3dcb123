import { ExitRequest } from "./control-flow.js";
import type { ExecContext, ShellRuntime } from "./context.js";
import type { OutputSpec, PipeHandle } from "./executor.js";
import type { IoTable } from "./io.js";
import { closePipes, shellSideStreams } from "./simple-command.js";
import { isNode, Op, type BinaryCmd, type Stmt } from "./syntax.js";

/** `a | b |& c` as its stages, left to right, each with whether its stderr joins the pipe (`|&`). */
export function pipelineStages(cmd: BinaryCmd): { stmt: Stmt; stderrToo: boolean }[] {
  const stages = [...stagesOf(cmd.X), ...stagesOf(cmd.Y)];
  return stages;

  function stagesOf(stmt: Stmt): { stmt: Stmt; stderrToo: boolean }[] {
    const inner = stmt.Cmd;
    if (stmt.Redirs.length === 0 && !stmt.Negated && isPipe(inner)) return pipelineStages(inner);
    return [{ stmt, stderrToo: stmt === cmd.X && cmd.Op === Op.PipeAll }];
  }
}

function isPipe(cmd: unknown): cmd is BinaryCmd {
  return isNode(cmd, "BinaryCmd") && (cmd.Op === Op.Pipe || cmd.Op === Op.PipeAll);
}

/**
 * Runs the stages of a pipeline concurrently, each in a subshell (its own copy of the shell state), stage
 * N's stdout feeding stage N+1's stdin through an executor pipe. A simple command gets the pipe itself
 * (so bytes between two programs never pass through the shell); a builtin or compound stage gets the
 * pipe's shell-side stream. The status is the last stage's; `PIPESTATUS` keeps them all.
 */
export async function runPipeline(
  shell: ShellRuntime,
  stages: readonly { stmt: Stmt; stderrToo: boolean }[],
  ctx: ExecContext,
): Promise<number> {
  const pipes: PipeHandle[] = stages.slice(1).map(() => shell.executor.createPipe());
  const statuses = await Promise.all(
    stages.map(async (stage, i) => {
      const previous = pipes[i - 1];
      const next = pipes[i];
      const stdout: OutputSpec = next === undefined ? ctx.io.stdout : { kind: "pipe", pipe: next };
      let io: IoTable = {
        stdin: previous === undefined ? ctx.io.stdin : { kind: "pipe", pipe: previous },
        stdout,
        stderr: stage.stderrToo ? stdout : ctx.io.stderr,
      };
      let release = async (): Promise<void> => {};
      if (!isNode(stage.stmt.Cmd, "CallExpr")) {
        const shellSide = shellSideStreams(shell, io);
        io = shellSide.io;
        release = shellSide.release;
      }
      const stageCtx: ExecContext = { ...ctx, state: ctx.state.clone(), io };
      try {
        return await shell.runStmt(stage.stmt, stageCtx);
      } catch (err: unknown) {
        await closePipes(shell, io);
        // Each stage is a subshell: `exit` ends the stage, not the shell.
        if (err instanceof ExitRequest) return err.status;
        throw err;
      } finally {
        await release();
      }
    }),
  );
  ctx.state.pipeStatus = statuses;
  return statuses.at(-1) ?? 0;
}
