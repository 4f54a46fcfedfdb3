-- wrk script for the lost-update check: with -t8 -c8 every wrk thread owns
-- one connection, and each thread increments its own session key
-- (/incr?k=k<thread>), all with the same session cookie (-H "Cookie: ...").
-- A store that writes the whole session back loses other threads' updates;
-- one that writes only the changed key loses none.
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  path = "/incr?k=k" .. id
  ok = 0
  bad = 0
end

function request()
  return wrk.format("GET", path)
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 else bad = bad + 1 end
end

function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    io.write(string.format("thread k%d ok=%d bad=%d\n", t:get("id"), t:get("ok"), t:get("bad")))
  end
end
