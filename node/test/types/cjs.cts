// CommonJS consumer of sessionkeeper's types.
import sk = require("sessionkeeper");
import session = require("express-session");

const store = new sk.SessionkeeperStore({ store: new sk.Store("memory://types"), ttl: (s) => (s.cookie.maxAge ?? 60_000) / 1000 });
const mw = session({ store, secret: "s", resave: false, saveUninitialized: false });
const codes: readonly string[] = sk.ERROR_CODES;
void mw, codes;
const cookieValue: string = sk.sign("x".repeat(32), "a shared secret of at least 32 bytes!!");
const sid: string | null = sk.unsign(cookieValue, "a shared secret of at least 32 bytes!!");
void sid;
