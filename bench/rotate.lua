-- wrk -s bench/rotate.lua URL -- REQUESTS_FILE
-- REQUESTS_FILE holds one request a line, "TOKEN<tab>BODY" (TOKEN empty: no Authorization
-- header), in the order the bench chose: each line the next session's token with a body that
-- differs. Every thread sends the lines in turn, round and round (a thread other than the first
-- starts further down the list). Answers are counted as GraphQL errors when they hold "errors";
-- wrk counts the non-2xx ones itself.
local threads = {}
local started = 0

function setup(thread)
  thread:set("id", started)
  started = started + 1
  table.insert(threads, thread)
end

function init(args)
  requests, errors = {}, 0
  for line in io.lines(args[1]) do
    local tab = assert(line:find("\t", 1, true), "a line without a tab")
    local token, body = line:sub(1, tab - 1), line:sub(tab + 1)
    local headers = {["Content-Type"] = "application/json"}
    if token ~= "" then
      headers["Authorization"] = "Bearer " .. token
    end
    requests[#requests + 1] = wrk.format("POST", nil, headers, body)
  end
  assert(#requests > 0, "no requests in " .. args[1])
  index = (id * 997) % #requests
end

function request()
  index = index % #requests + 1
  return requests[index]
end

function response(status, headers, body)
  if body and body:find('"errors"', 1, true) then
    errors = errors + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("errors")
  end
  io.write(string.format("GraphQL errors: %d\n", total))
end
