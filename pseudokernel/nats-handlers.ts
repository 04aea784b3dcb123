import type { Msg } from "@nats-io/transport-node";
import { encode } from "./codec.js";

/**
 * A subscription callback that never throws into nats.js: a throw there ends the connection's read
 * loop, so one malformed message on a subject anyone may publish to would wedge every subscription of
 * the process. Whatever `onMessage` throws (a bad payload) drops that message.
 */
export function guarded(onMessage: (msg: Msg) => void): (err: Error | null, msg: Msg) => void {
  return (err, msg) => {
    if (err !== null) return;
    try {
      onMessage(msg);
    } catch {
      // not a message we can use: dropped
    }
  };
}

/** Answers a request, if it asked for an answer; an asker that went away times out on its side. */
export function replyTo(msg: Msg, value: unknown): void {
  if (msg.reply === undefined || msg.reply === "") return;
  try {
    msg.respond(encode(value));
  } catch {
    // the connection is going away
  }
}
