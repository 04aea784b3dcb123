/**
 * The numbers that bound a stream. Every byte a stream holds is within these: the reader never holds
 * more than WINDOW_BYTES that its consumer has not taken, the writer never holds more than WINDOW_BYTES
 * sent but not yet confirmed, so one stream costs at most 2 × WINDOW_BYTES + WRITER_HIGH_WATER_BYTES.
 */

/**
 * Credit a reader grants beyond what its consumer has taken. It must cover the bandwidth-delay product
 * of two NATS hops (≈ 1 ms at ≈ 1 GB/s ⇒ ≈ 1 MB) with room to spare, and stay small enough that a
 * thousand idle pipes cost little.
 */
export const WINDOW_BYTES = 4 * 1024 * 1024;

/**
 * Largest data frame. Far below the cluster's max_payload; big enough that per-message costs
 * (subject parsing, one callback) stay small next to the copy.
 */
export const MAX_FRAME_BYTES = 512 * 1024;

/** Bytes a writer's Writable side buffers before telling its source to pause. */
export const WRITER_HIGH_WATER_BYTES = 256 * 1024;

/** Sent data not confirmed for this long is sent again (go-back-N). */
export const RETRANSMIT_MS = 1000;

/** A reader acknowledges at the latest this long after receiving unacknowledged bytes. */
export const DELAYED_ACK_MS = 5;

/** An endpoint that has sent nothing for this long sends a ping, so its peer knows it is alive. */
export const KEEPALIVE_MS = 1000;

/** An endpoint that hears nothing from its peer for this long fails the stream with EPEERLOST. */
export const PEER_TIMEOUT_MS = 5000;

/** How long an endpoint waits for its peer's first word before failing with EPEERLOST. */
export const CONNECT_TIMEOUT_MS = 20_000;

/** After the end, a reader keeps answering a writer's retransmitted EOF this long. */
export const LINGER_MS = 2000;

/**
 * A stream moves its data to a direct link (when the reader's process offers one) once it has carried
 * this much over NATS: short streams (most stdio) never pay for a TCP connection.
 */
export const DIRECT_AFTER_BYTES = 1024 * 1024;
