-- wrk script for bench/service.py: POST /v1/sample with the default GLB output, cycling
-- through seeds 0..29 (the same shapes the direct in-process baseline meshes)
local seed = -1
request = function()
  seed = (seed + 1) % 30
  local body = '{"seeds": [' .. seed .. ']}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
