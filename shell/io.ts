import { Readable, Writable } from "node:stream";
import type { Executor, InputSpec, OutputSpec } from "./executor.js";

/**
 * The shell's standard streams at one point of execution. `stderr === stdout` (the same object) means
 * `2>&1`: commands launched from here get `{ kind: "stdout" }` for stderr so both share one destination.
 * A `pipe` spec only ever appears for the single simple command that is a pipeline stage; compound
 * stages get the pipe's shell-side stream instead (see pipeline.ts).
 */
export interface IoTable {
  readonly stdin: InputSpec;
  readonly stdout: OutputSpec;
  readonly stderr: OutputSpec;
}

/** A stream opened for a builtin, with what to do once the builtin is finished with it. */
export interface OpenedOutput {
  readonly stream: Writable;
  release(): Promise<void>;
}
export interface OpenedInput {
  readonly stream: Readable;
  release(): void;
}

/** Opens an output spec as a stream inside the shell (builtins, `@*` prefixing). */
export async function openOutput(executor: Executor, spec: OutputSpec): Promise<OpenedOutput> {
  switch (spec.kind) {
    case "null":
      return { stream: discardSink(), release: async () => {} };
    case "writable":
      return { stream: spec.stream, release: async () => {} };
    case "pipe": {
      const stream = executor.pipeWriter(spec.pipe);
      return { stream, release: () => endStream(stream) };
    }
    case "file": {
      const stream = await executor.fs.openWrite(spec.path, { append: spec.append });
      return { stream, release: () => endStream(stream) };
    }
    case "stdout":
      throw new Error("BUG: 'stdout' output spec reached openOutput");
  }
}

/** Opens an input spec as a stream inside the shell. */
export async function openInput(executor: Executor, spec: InputSpec): Promise<OpenedInput> {
  switch (spec.kind) {
    case "null":
      return { stream: Readable.from([]), release: () => {} };
    case "readable":
      return { stream: spec.stream, release: () => {} };
    case "pipe": {
      const stream = executor.pipeReader(spec.pipe);
      // Destroying an unread pipe is how the writer learns the reader is gone (SIGPIPE).
      return { stream, release: () => stream.destroy() };
    }
    case "file": {
      const stream = await executor.fs.openRead(spec.path);
      return { stream, release: () => stream.destroy() };
    }
  }
}

export function discardSink(): Writable {
  return new Writable({
    write(_chunk, _encoding, callback) {
      callback();
    },
  });
}

/** Ends a stream and waits until it has flushed (or failed: a vanished reader is not the writer's error). */
export function endStream(stream: Writable): Promise<void> {
  return new Promise<void>((done) => {
    if (stream.destroyed || stream.writableFinished) {
      done();
      return;
    }
    stream.once("error", () => done());
    stream.once("close", () => done());
    stream.end(() => done());
  });
}

/** Writes with back-pressure; resolves false when the reader has gone away. */
export function writeTo(stream: Writable, data: string | Uint8Array): Promise<boolean> {
  return new Promise<boolean>((done) => {
    if (stream.destroyed || stream.writableEnded) {
      done(false);
      return;
    }
    const onError = (): void => done(false);
    stream.once("error", onError);
    const flushed = stream.write(data, (err) => {
      stream.off("error", onError);
      if (err) done(false);
      else if (flushed) done(true);
    });
    if (!flushed) {
      stream.once("drain", () => done(true));
    }
  });
}

/** Collects a `$(...)` command's output, up to a limit. */
export class CaptureSink extends Writable {
  /**
   * `$(...)` output lives in a shell variable in memory; 64 MiB keeps a runaway command (`$(yes)`) from
   * taking the shell down while leaving room for any sensible use.
   */
  static readonly LIMIT_BYTES = 64 * 1024 * 1024;
  readonly #chunks: Buffer[] = [];
  #size = 0;

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.#size += chunk.length;
    if (this.#size > CaptureSink.LIMIT_BYTES) {
      callback(new Error(`command substitution output exceeds ${CaptureSink.LIMIT_BYTES} bytes`));
      return;
    }
    this.#chunks.push(chunk);
    callback();
  }

  text(): string {
    return Buffer.concat(this.#chunks).toString("utf8");
  }
}
