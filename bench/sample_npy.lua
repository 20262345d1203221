-- wrk script for bench/service.py: POST /v1/sample, npy output, a new seed per request
local seed = 1000000
request = function()
  seed = seed + 1
  local body = '{"seeds": [' .. seed .. '], "output": {"format": "npy"}}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
