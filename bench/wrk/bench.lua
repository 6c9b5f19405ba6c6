-- wrk script for bench/run.py.
--
--   wrk ... -s bench.lua URL -- get
--   wrk ... -s bench.lua URL -- bodies FILE NTHREADS TOKEN PATH
--
-- "bodies": POSTs one JSON body per request from FILE (one per line). Every
-- verification consumes its nonce, so a body is never sent twice: thread i of n takes
-- lines i, i+n, i+2n, ...; a thread that runs out stops (the harness sizes the pool so
-- that does not happen within the run, and reports it if it does).
-- Both modes count responses per status and print one JSON line at the end.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local requests_pool = nil
local position = 0
statuses = {}
exhausted = 0

function init(args)
  if args[1] == "bodies" then
    local file, nthreads, token, path = args[2], tonumber(args[3]), args[4], args[5]
    local headers = {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. token,
    }
    requests_pool = {}
    local index = 0
    for line in io.lines(file) do
      if index % nthreads == id and #line > 0 then
        table.insert(requests_pool, wrk.format("POST", path, headers, line))
      end
      index = index + 1
    end
  end
end

function request()
  if requests_pool == nil then
    return wrk.format()
  end
  position = position + 1
  if position > #requests_pool then
    exhausted = 1
    wrk.thread:stop()
    position = 1
  end
  return requests_pool[position]
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  local any_exhausted = 0
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    if s then
      for k, v in pairs(s) do counts[k] = (counts[k] or 0) + v end
    end
    if thread:get("exhausted") == 1 then any_exhausted = 1 end
  end
  local parts = {}
  for k, v in pairs(counts) do table.insert(parts, string.format('"%s": %d', k, v)) end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, ' ..
    '"p99_us": %d, "mean_us": %.1f, "max_us": %d, "statuses": {%s}, "exhausted": %s, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.mean, latency.max, table.concat(parts, ", "),
    any_exhausted == 1 and "true" or "false",
    e.connect, e.read, e.write, e.status, e.timeout))
end
