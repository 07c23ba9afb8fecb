-- wrk -s bench/post.lua URL -- BODY_FILE [TOKEN_FILE]
-- Every request is a POST of BODY_FILE as JSON; with TOKEN_FILE, it carries that bearer token.
local function read(path)
  local file = assert(io.open(path, "rb"))
  local text = file:read("*a")
  file:close()
  return text
end

function init(args)
  wrk.method = "POST"
  wrk.body = read(args[1])
  wrk.headers["Content-Type"] = "application/json"
  if args[2] then
    wrk.headers["Authorization"] = "Bearer " .. read(args[2]):gsub("%s+$", "")
  end
end
