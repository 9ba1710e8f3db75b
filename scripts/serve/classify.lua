-- wrk script of scripts/bench-serve.sh: POST /v1/classify with real texts.
--
--   wrk -t2 -c8 -d20s --latency -s scripts/serve/classify.lua http://127.0.0.1:PORT/v1/classify \
--       -- POOL THREADS [FRESH SHARE]
--
-- POOL and FRESH hold one request body a line ({"text": ...}, already JSON).
-- THREADS must equal wrk's -t: thread k of T sends lines k, k+T, k+2T, ... so
-- the threads never send the same line at the same time and, for FRESH,
-- never the same line at all. Without FRESH every request takes the next POOL
-- line (cycling). With FRESH, a SHARE (0..1) of the requests, evenly spread,
-- takes the next FRESH line instead (counted as wrapped once FRESH is used up).
-- At the end one line `BENCH {json}` gives requests/s, p50/p90/p99 latency
-- (ms), the responses that said "cached": true, non-2xx and socket errors.

local function lines(path)
  local t = {}
  local f = assert(io.open(path, "r"), "cannot open " .. tostring(path))
  for l in f:lines() do
    if l ~= "" then t[#t + 1] = l end
  end
  f:close()
  assert(#t > 0, path .. " is empty")
  return t
end

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  threads[#threads + 1] = thread
end

function init(args)
  local nthreads = tonumber(args[2]) or error("usage: -- POOL THREADS [FRESH SHARE]")
  local headers = { ["Content-Type"] = "application/json" }
  local function requests(file) -- preformatted, to spare the client's CPU
    local r = {}
    for i, body in ipairs(lines(file)) do r[i] = wrk.format("POST", nil, headers, body) end
    return r
  end
  pool, pool_i, stride = requests(args[1]), id, nthreads
  if args[3] then
    fresh, fresh_i, share = requests(args[3]), id, tonumber(args[4]) or 0.2
  end
  n, hits, fresh_sent, fresh_wrapped, non2xx = 0, 0, 0, 0, 0
end

function request()
  n = n + 1
  if fresh and math.floor(n * share) > math.floor((n - 1) * share) then
    if fresh_i >= #fresh then fresh_wrapped = fresh_wrapped + 1 end
    local r = fresh[fresh_i % #fresh + 1]
    fresh_i = fresh_i + stride
    fresh_sent = fresh_sent + 1
    return r
  end
  local r = pool[pool_i % #pool + 1]
  pool_i = pool_i + stride
  return r
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  elseif body:find('"cached"%s*:%s*true') then
    hits = hits + 1
  end
end

function done(summary, latency, requests)
  local sum = function(name)
    local s = 0
    for _, t in ipairs(threads) do s = s + (tonumber(t:get(name)) or 0) end
    return s
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    'BENCH {"requests": %d, "duration_s": %.3f, "rps": %.2f, "p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, '
      .. '"mean_ms": %.3f, "max_ms": %.3f, "cached_hits": %d, "non2xx": %d, "socket_errors": %d, '
      .. '"fresh_sent": %d, "fresh_wrapped": %d}\n',
    summary.requests, secs, summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.mean / 1000, latency.max / 1000, sum("hits"), sum("non2xx"),
    e.connect + e.read + e.write + e.timeout, sum("fresh_sent"), sum("fresh_wrapped")))
end
