-- wrk script: POST the same task body on every request (a static request, which wrk builds
-- once, so the generator spends its time on the network and not in Lua).
-- Arguments after `--`: the priority, and optionally a per-thread count of responses after
-- which the thread stops and prints "limit reached", so the caller can end the run early
-- (wrk itself only knows durations).

local limit = 0
local responses = 0

function init(args)
  local priority = tonumber(args[1] or "1")
  limit = tonumber(args[2] or "0")
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = string.format('{"a":20,"b":22,"priority":%d}', priority)
end

function response(status, headers, body)
  responses = responses + 1
  if limit > 0 and responses == limit then
    io.write("limit reached\n")
    io.flush()
    wrk.thread:stop()
  end
end
