/**
 * Every limit the desktop server enforces, in one place, each with the reason for its number.
 */

/** Default cap on one uploaded (or saved) file: big enough for documents and images, small enough that a
 * stray multi-gigabyte drop does not fill the cluster's JetStream store from a browser tab. */
export const DEFAULT_UPLOAD_LIMIT_BYTES = 64 * 1024 * 1024;

/** JSON request bodies (rename, mkdir, signal...) are a few hundred bytes; anything bigger is abuse. */
export const JSON_BODY_LIMIT = "64kb";

/** A CloudFS path longer than Linux's PATH_MAX is refused before it reaches CloudFS. */
export const PATH_MAX_BYTES = 4096;

/** Chunk size for streaming a download out of CloudFS: one CloudFS block read per chunk. */
export const DOWNLOAD_CHUNK_BYTES = 1024 * 1024;

/** A directory listing shows at most this many entries (the rest are counted, not sent). */
export const LIST_MAX_ENTRIES = 5000;

/** Recursive delete from the desktop stops after this many entries (use the shell for bigger trees). */
export const DELETE_MAX_ENTRIES = 10_000;

/** Login sessions kept at once; the oldest is forgotten past this (each holds only an id and times). */
export const MAX_LOGIN_SESSIONS = 64;

/** A login session lasts this long without use (and never past its cluster session's `exp`). */
export const LOGIN_IDLE_MS = 12 * 60 * 60 * 1000;

/**
 * While a browser is active its cluster session is refreshed this often. A refresh is also the
 * runtimes' check that the user still exists with the same password, so this bounds how long a
 * `userdel` or `passwd` takes to reach the Files window (CloudFS checks modes, not sessions).
 */
export const SESSION_CHECK_MS = 5 * 60 * 1000;

/** Ended and idle logins are looked for this often (their terminals are hung up). */
export const LOGIN_SWEEP_MS = 60 * 1000;

/**
 * Logins waiting for the cluster's answer at once. The runtimes answer a guessed name's failures
 * seconds late (their rate limit), so a flood of guesses would otherwise pile up here.
 */
export const MAX_PENDING_LOGINS = 8;

/** The login form's body: a user name (≤ 32) and a password (≤ 1024), URL-encoded. */
export const LOGIN_FORM_LIMIT = "8kb";

/** Terminal sessions (each a PTY running the shell) across all logins. */
export const MAX_TERMINALS = 16;

/** A terminal nobody is attached to lives this long, so a page reload or a short network loss finds it again. */
export const DETACHED_TERMINAL_MS = 15 * 60 * 1000;

/** Output kept per terminal for replay when a browser re-attaches: a few screens of a busy program. */
export const REPLAY_BYTES = 256 * 1024;

/**
 * Flow control, as xterm.js's guide describes it: the browser acknowledges output it has rendered; when
 * more than HIGH is sent but not yet rendered the PTY is paused (the shell blocks in write(2)), and it is
 * resumed when the backlog drops under LOW. xterm.js itself drops data past ~50 MB of pending writes.
 */
export const TERMINAL_HIGH_WATERMARK = 512 * 1024;
export const TERMINAL_LOW_WATERMARK = 128 * 1024;

/** WebSocket messages from the browser: keystrokes, pastes and small control messages. */
export const WS_MAX_PAYLOAD = 1024 * 1024;

/** A live-data client whose socket has this much unsent is skipped for a sample (the next one supersedes it). */
export const LIVE_MAX_BUFFERED = 1024 * 1024;

/** Live samples: nodes and processes are read from the kernel this often while a browser watches. */
export const LIVE_INTERVAL_MS = 1000;

/** Ended processes sent to the browser at most (the newest): the table of running ones is sent whole. */
export const LIVE_MAX_ENDED = 200;

/** The desktop's own CloudFS block cache (it reads and writes whole files on behalf of the browser). */
export const FILES_CACHE_BYTES = 64 * 1024 * 1024;
