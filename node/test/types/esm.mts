// ESM consumer of sessionkeeper's types.
import express from "express";
import session from "express-session";
import sk, { Store, SessionkeeperStore, isSessionkeeperError, type SaveResult, type SessionkeeperError } from "sessionkeeper";

declare module "express-session" {
  interface SessionData {
    user: string;
  }
}

const store = new Store("redis://127.0.0.1:6379", { idle_ttl: "30m", command_timeout: 1, tls_insecure: false });
const short: Store = store.withIdleTtl(60_000);
const ttl: number | null = short.idleTtlMs;

async function engine(): Promise<void> {
  const { id, baseline } = await store.create({ user: "alice", roles: ["admin"], at: new Date(), raw: Buffer.from("x"), n: 1n });
  const loaded = await store.load(id, 60_000);
  if (loaded) {
    loaded.data.visits = 1;
    const r: SaveResult = await store.save(id, loaded.baseline, loaded.data);
    const o: "saved" | "unchanged" | "gone" = r.outcome;
    const expires: number | null = loaded.meta.expiresAtMs;
    void o, expires;
  }
  const again = await store.insert(id, {}, null);
  const renewed: string | null = await store.renew(id);
  const gone: boolean = await store.destroy(id);
  const copy = baseline.copy();
  void again, renewed, gone, copy;
  const stats = store.stats();
  const p99: number = stats.roundTrips.p99Us + stats.errors.timeout;
  void p99, ttl;
  // @ts-expect-error ids are strings
  await store.load(42);
  // @ts-expect-error functions are not session values
  await store.create({ f: () => 1 });
  // @ts-expect-error unknown option names are caught at compile time too
  new Store("memory://x", { idle_tll: "5m" });
}

const app = express();
const sessions = new SessionkeeperStore({ url: "redis+cluster://127.0.0.1:7000", ttl: 3600, failOpen: true, key_prefix: "app:" });
app.use(session({ store: sessions, secret: "s", resave: false, saveUninitialized: false }));
app.get("/", (req, res) => {
  req.session.user = "alice";
  res.send("ok");
});
sessions.on("failopen", (err: SessionkeeperError, op: string) => console.warn(op, err.code, err.temporary));

async function adapter(): Promise<void> {
  const s = await sessions.get("x".repeat(32));
  await sessions.destroy("x".repeat(32));
  sessions.get("x".repeat(32), (err, sess) => void [err, sess]);
  void s;
}

try {
  new Store("nope://");
} catch (e) {
  if (isSessionkeeperError(e)) {
    const code: SessionkeeperError["code"] = e.code;
    const temporary: boolean = e.temporary;
    void code, temporary;
  }
}

void engine, adapter, sk.generateId(), sk.isValidId("x");

async function listing(store: Store): Promise<void> {
  const handles: string[] = await store.handles();
  const n: number = await store.count();
  const cleared: number = await store.clear();
  const peeked = await store.peekHandle(handles[0]);
  const window: number | null | undefined = peeked?.meta.idleTtlMs;
  const gone: boolean = await store.destroyHandle(handles[0]);
  const found = await store.legacyRead("x".repeat(32), ["sess:", { privateId: "_session_id:" }]);
  const bytes: Buffer | undefined = found?.bytes;
  const b = await store.legacyMigrate("x".repeat(32), [{ plain: "sess:" }], { user: "a" }, 60000);
  await store.legacyDelete("x".repeat(32), ["sess:"]);
  // @ts-expect-error a source is a prefix string or { plain } / { privateId }
  await store.legacyRead("x".repeat(32), [42]);
  const all = await sessions.all();
  const ids: string[] = await sessions.ids();
  const len: number = await sessions.length();
  await sessions.clear();
  sessions.length((err, count) => void [err, count]);
  new SessionkeeperStore({ url: "redis://", migrate: { prefix: "sess:" } });
  void n, cleared, window, gone, bytes, b, all, ids, len, sk.isValidHandle("2::");
}
void listing;

// Shared mode's cookie functions.
import { sign, unsign } from "sessionkeeper";
const signed: string = sign("x".repeat(32), "a shared secret of at least 32 bytes!!");
const id: string | null = unsign(signed, ["new secret of at least 32 bytes......", Buffer.from("old secret of at least 32 bytes......")]);
const none: string | null = unsign(undefined, "a shared secret of at least 32 bytes!!");
const viaDefault: string = sk.sign("x".repeat(32), "a shared secret of at least 32 bytes!!");
// @ts-expect-error ids are strings
sign(42, "a shared secret of at least 32 bytes!!");
// @ts-expect-error secrets are strings or bytes
unsign(signed, 42);
void id, none, viaDefault;
