-- wrk script for bench/overload.py: POST /v1/sample (npy, a new seed per request), counting
-- each response status; done() prints "status <code> <count>" lines for every thread together
local seed = 2000000
local threads = {}
counts = {}

function setup(thread)
  table.insert(threads, thread)
end

request = function()
  seed = seed + 1
  local body = '{"seeds": [' .. seed .. '], "output": {"format": "npy"}}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end

response = function(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

done = function(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("counts")) do
      total[code] = (total[code] or 0) + n
    end
  end
  for code, n in pairs(total) do
    io.write(string.format("status %d %d\n", code, n))
  end
  local e = summary.errors
  io.write(string.format("socket_errors %d\n", e.connect + e.read + e.write + e.timeout))
end
