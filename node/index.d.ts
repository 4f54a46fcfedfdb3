// Types for sessionkeeper (CommonJS and ESM entries export the same names).
import type { SessionData as ExpressSessionData, Store as ExpressStore } from "express-session";

/**
 * What a session can hold. Values convert as follows (and back):
 * `null`/`undefined` -> null; boolean; number (integers within ±(2^53-1) stay
 * integers); `bigint` in the signed 64-bit range (read back as a number when
 * it fits in ±(2^53-1), else as a bigint); string; `Buffer`/`Uint8Array`
 * (read back as `Buffer`); arrays; plain objects; valid `Date`s (millisecond
 * precision). Anything else (functions, symbols, `Map`, `Set`, class
 * instances, other typed arrays) is rejected with a `TypeError` naming the
 * key. Object properties set to `undefined` are left out.
 */
export type SessionValue =
  | null
  | undefined
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Date
  | SessionValue[]
  | { [key: string]: SessionValue };

/** A session's data: its top-level keys are what `save` compares and merges. */
export type SessionRecord = { [key: string]: SessionValue };

/**
 * Engine option names (snake_case, as in every Sessionkeeper binding).
 * Durations are strings like `"30s"`, `"15m"`, `"2h"`, `"250ms"`, or a number
 * of seconds; `"0"`/`"none"` disables a TTL. Unknown names are a
 * `SESSIONKEEPER_CONFIG` error.
 */
export interface StoreOptions {
  key_prefix?: string;
  idle_ttl?: string | number;
  absolute_ttl?: string | number;
  connect_timeout?: string | number;
  command_timeout?: string | number;
  codec?: "msgpack" | "json";
  max_size?: string | number;
  tls_ca_file?: string;
  tls_insecure?: boolean | string;
  sentinel_username?: string;
  sentinel_password?: string;
}

/**
 * Every error from the engine. `code` tells what happened; `temporary` whether
 * the same call may succeed later (Redis restarting, failing over, overloaded).
 */
export interface SessionkeeperError extends Error {
  code:
    | "SESSIONKEEPER_CONFIG"
    | "SESSIONKEEPER_CONNECTION"
    | "SESSIONKEEPER_TIMEOUT"
    | "SESSIONKEEPER_AUTH"
    | "SESSIONKEEPER_CODEC"
    | "SESSIONKEEPER_TOO_LARGE"
    | "SESSIONKEEPER_INVALID_ID"
    | "SESSIONKEEPER_UNEXPECTED";
  kind: "config" | "connection" | "timeout" | "auth" | "codec" | "too_large" | "invalid_id" | "unexpected";
  temporary: boolean;
}

export declare const ERROR_CODES: readonly SessionkeeperError["code"][];
export declare function isSessionkeeperError(err: unknown): err is SessionkeeperError;

/** A new session id: 128 random bits as 32 hex characters (usable as express-session's `genid`). */
export declare function generateId(): string;
/** Whether `id` can be a session id: 32 to 128 characters of `[A-Za-z0-9_-]`. */
export declare function isValidId(id: unknown): boolean;
/** Whether `handle` looks like one from `Store#handles()`: `"2::"` and 64 lowercase hex digits. */
export declare function isValidHandle(handle: unknown): boolean;

/** A shared-mode secret: a string (its UTF-8 bytes) or bytes, at least 32 bytes long. */
export type CookieSecret = string | Uint8Array;

/**
 * Shared mode: the signed cookie value `s:<id>.<signature>` (express-session's
 * format, HMAC-SHA256 keyed by `secret`) for a session id. express-session
 * configured with the same `secret` reads and issues it natively, so an
 * express app needs neither function. Throws `SESSIONKEEPER_CONFIG` for a
 * secret shorter than 32 bytes, `SESSIONKEEPER_INVALID_ID` for an id that
 * cannot be a session id.
 */
export declare function sign(id: string, secret: CookieSecret): string;
/**
 * Shared mode: the session id in a signed cookie value when one of `secrets`
 * verifies it (the first secret signs, every one verifies: rotation), else
 * null. Takes the value as any cookie parser hands it over (quoted,
 * percent-encoded, or form-decoded with `+` as a space); `undefined`/`null`
 * (no cookie) give null. Throws `SESSIONKEEPER_CONFIG` for a secret shorter
 * than 32 bytes.
 */
export declare function unsign(value: string | null | undefined, secrets: CookieSecret | readonly CookieSecret[]): string | null;

/**
 * Where a peer store kept a session, for migration: a string or `{ plain }` is
 * `prefix + id` (connect-redis: `"sess:"`); `{ privateId }` is
 * `prefix + "2::" + sha256(id)` (Rack's private id).
 */
export type LegacySource = string | { plain: string } | { privateId: string };

/** What a session held when loaded; pass it back to `save`. Opaque; `save` updates it. */
export declare class Baseline {
  private constructor();
  /** An independent copy: saving with one does not update the other. */
  copy(): Baseline;
}

export interface SessionMeta {
  /** Creation time, milliseconds since the epoch (Redis server clock). */
  createdAtMs: number;
  /** The absolute deadline (`absolute_ttl`), or null. */
  deadlineMs: number | null;
  /** When the session expires unless used again, or null (never). */
  expiresAtMs: number | null;
  /** The session's own sliding window (ms; null: none), when one was stored with it by a `withIdleTtl` handle. */
  idleTtlMs?: number | null;
}

export interface Loaded {
  data: SessionRecord;
  meta: SessionMeta;
  baseline: Baseline;
}

export interface SaveResult {
  /** `unchanged`: nothing was sent. `gone`: destroyed or expired meanwhile, not re-created: start a new session. */
  outcome: "saved" | "unchanged" | "gone";
  /** Top-level keys written and removed. */
  written: number;
  removed: number;
}

export interface LatencyStats {
  count: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
}

export interface StoreStats {
  loads: number;
  hits: number;
  misses: number;
  saves: number;
  skippedSaves: number;
  goneSaves: number;
  /** Saves that merged into a session another save had changed: contention. */
  mergedSaves: number;
  creates: number;
  destroys: number;
  keysWritten: number;
  keysRemoved: number;
  bytesRead: number;
  bytesWritten: number;
  invalidIds: number;
  errors: Record<SessionkeeperError["kind"], number>;
  roundTrips: LatencyStats;
}

/**
 * `ttlMs` arguments: `undefined` uses the handle's idle TTL, `null` or `0`
 * turns sliding expiry off for this call, a number is milliseconds.
 */
export type TtlMs = number | null | undefined;

/**
 * The engine. Every I/O method returns a Promise, runs on the engine's own
 * threads and never blocks the event loop; bad arguments reject too
 * (`TypeError`/`RangeError`). Engine failures reject with a `SessionkeeperError`.
 */
export declare class Store {
  /**
   * @param url `redis://`, `rediss://`, `redis+cluster://h1:p1,h2:p2`, `redis+sentinel://h:p/master`, `unix://`, `memory://name`
   * @throws SessionkeeperError with code `SESSIONKEEPER_CONFIG` for a bad URL or option. Connects lazily.
   */
  constructor(url: string, options?: StoreOptions);
  /** A handle on the same connections whose calls use another idle TTL (ms; `null`/`0`: none). */
  withIdleTtl(ttlMs: number | null): Store;
  /** A handle whose loads expect sessions to carry this window (ms; `null`/`0`: none) as their own (stored by `withIdleTtl` saves): loading one that does is one command instead of two. Other calls are unchanged. */
  withLoadWindow(windowMs: number | null): Store;
  /** This handle's idle TTL in milliseconds, or null. */
  readonly idleTtlMs: number | null;
  /** Counters since the store was opened (synchronous, no I/O). */
  stats(): StoreStats;
  /** A baseline holding nothing, for `save` without `load`: writes every key given, deletes none. */
  emptyBaseline(): Baseline;
  /** Reads a session and slides its expiry. null when missing, expired or the id is invalid. A corrupt session is removed and rejects with `SESSIONKEEPER_CODEC`. */
  load(id: string, ttlMs?: TtlMs): Promise<Loaded | null>;
  /** Writes the top-level keys that changed since `baseline`, in one atomic round trip. */
  save(id: string, baseline: Baseline, data: SessionRecord, ttlMs?: TtlMs): Promise<SaveResult>;
  /** Stores `data` under a new random id. */
  create(data: SessionRecord, ttlMs?: TtlMs): Promise<{ id: string; baseline: Baseline }>;
  /** Stores `data` under `id` only if no session has it; null when one does. */
  insert(id: string, data: SessionRecord, ttlMs?: TtlMs): Promise<Baseline | null>;
  /** Deletes a session; whether there was one. */
  destroy(id: string): Promise<boolean>;
  /** Slides a session's expiry without reading it; whether it exists. */
  touch(id: string, ttlMs?: TtlMs): Promise<boolean>;
  /** Whether a live session has this id (does not slide it). */
  exists(id: string): Promise<boolean>;
  /** Moves a session to a new id (against session fixation); the new id, or null when there was none. */
  renew(id: string, ttlMs?: TtlMs): Promise<string | null>;
  /**
   * The opaque handle (`"2::<sha256 hex>"`) of every live session under the key
   * prefix (SCAN on every Cluster master). Handles are NOT session ids (ids are
   * stored only as SHA-256) and cannot be used as cookies. Not for request paths.
   */
  handles(): Promise<string[]>;
  /** The number of live sessions under the key prefix (a SCAN). */
  count(): Promise<number>;
  /** Deletes every session under the key prefix; how many were deleted. */
  clear(): Promise<number>;
  /** Reads the session behind a handle without sliding its expiry; null when gone. */
  peekHandle(handle: string): Promise<Loaded | null>;
  /** Deletes the session behind a handle; whether there was one. */
  destroyHandle(handle: string): Promise<boolean>;
  /** Migration: the value a peer store wrote for `id` (first source that has one), bytes as the peer wrote them. */
  legacyRead(id: string, sources: LegacySource[]): Promise<{ source: number; bytes: Buffer } | null>;
  /** Migration: stores `data` as a session in our layout, then deletes the peer's keys. null: a concurrent request migrated it first (load it). */
  legacyMigrate(id: string, sources: LegacySource[], data: SessionRecord, ttlMs?: TtlMs): Promise<Baseline | null>;
  /** Migration: deletes the peer's keys for `id`. */
  legacyDelete(id: string, sources: LegacySource[]): Promise<void>;
}

export interface SessionkeeperStoreOptions extends StoreOptions {
  /** Redis URL; required unless `store` is given. */
  url?: string;
  /** Use this Store (and its connections) instead of opening one from `url`. */
  store?: Store;
  /**
   * Seconds a session lives when its cookie has no `expires` (a browser-session
   * cookie), or a function of the session that overrides the cookie's lifetime.
   * Default: the cookie's `maxAge`, else the store's `idle_ttl` (14 days).
   */
  ttl?: number | ((session: ExpressSessionData) => number);
  /** On a temporary Redis failure, hand the request a fresh session (get) or drop the write (set/touch) instead of an error. `destroy` errors always surface. */
  failOpen?: boolean;
  /** `touch` does nothing (no TTL or cookie write for unmodified sessions); loads still slide the expiry by the session's window. */
  disableTouch?: boolean;
  /**
   * Opt-in migration from connect-redis: on a miss, the session connect-redis
   * stored under `prefix + sid` (JSON) is moved into this store's layout and
   * the old key deleted. `serializer` defaults to `JSON`.
   */
  migrate?: { prefix?: string; serializer?: { parse(text: string): any } };
}

type Callback<T = void> = (err: any, result?: T) => void;

/**
 * express-session's store (also works with @fastify/session). Every method
 * takes a callback or, without one, returns a Promise. Events: `corrupt`
 * (err, sid) when an undecodable session was removed; `failopen` (err, op, sid)
 * when `failOpen` hid a temporary error.
 */
export declare class SessionkeeperStore extends ExpressStore {
  constructor(options: SessionkeeperStoreOptions);
  readonly store: Store;
  get(sid: string, callback: Callback<ExpressSessionData | null>): void;
  get(sid: string): Promise<ExpressSessionData | null>;
  set(sid: string, session: ExpressSessionData, callback: Callback): void;
  set(sid: string, session: ExpressSessionData): Promise<void>;
  destroy(sid: string, callback: Callback): void;
  destroy(sid: string): Promise<void>;
  touch(sid: string, session: ExpressSessionData, callback: Callback): void;
  touch(sid: string, session: ExpressSessionData): Promise<void>;
  /** Every live session (cookie not expired), as an array; each has a non-enumerable `handle` (opaque, NOT the session id). */
  all(callback: Callback<ExpressSessionData[]>): void;
  all(): Promise<ExpressSessionData[]>;
  /** The opaque handles of the live sessions (NOT session ids; not usable as cookies). */
  ids(callback: Callback<string[]>): void;
  ids(): Promise<string[]>;
  /** The number of live sessions. */
  length(callback: Callback<number>): void;
  length(): Promise<number>;
  /** Deletes every session under the key prefix. */
  clear(callback: Callback): void;
  clear(): Promise<void>;
}

declare const sessionkeeper: {
  Store: typeof Store;
  Baseline: typeof Baseline;
  SessionkeeperStore: typeof SessionkeeperStore;
  generateId: typeof generateId;
  isValidId: typeof isValidId;
  isValidHandle: typeof isValidHandle;
  sign: typeof sign;
  unsign: typeof unsign;
  isSessionkeeperError: typeof isSessionkeeperError;
  ERROR_CODES: typeof ERROR_CODES;
};
export default sessionkeeper;
