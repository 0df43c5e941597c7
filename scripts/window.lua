-- window.lua - the sliding context window: the last N conversation entries (joins, leaves, what
-- people said, what the persona said), oldest first. N = persona.context_size (default 15, the
-- original design's number), capped at MAX. Bounded: pushing past N drops the oldest.
-- Runs inside the sandbox (module "window").

local M = {}
M.DEFAULT_SIZE = 15
M.MAX_SIZE = 200
M.MAX_TEXT = 500 -- code points kept per entry

local Window = {}
Window.__index = Window

--- new(n) -> window
function M.new(n)
  n = math.tointeger(n) or M.DEFAULT_SIZE
  if n < 1 then n = 1 end
  if n > M.MAX_SIZE then n = M.MAX_SIZE end
  return setmetatable({size = n, first = 1, count = 0, buf = {}}, Window)
end

--- push(entry): entry = {t, kind = "say"|"join"|"leave"|"self", speaker, text, lang}
function Window:push(entry)
  if self.count < self.size then
    self.buf[(self.first + self.count - 1) % self.size + 1] = entry
    self.count = self.count + 1
  else
    self.buf[self.first] = entry
    self.first = self.first % self.size + 1
  end
  return entry
end

--- items() -> list of entries, oldest first (a fresh table)
function Window:items()
  local out = {}
  for i = 0, self.count - 1 do
    out[#out + 1] = self.buf[(self.first + i - 1) % self.size + 1]
  end
  return out
end

--- last(k) -> the k-th newest entry (1 = newest) or nil
function Window:last(k)
  k = k or 1
  if k < 1 or k > self.count then return nil end
  return self.buf[(self.first + self.count - k - 1) % self.size + 1]
end

function Window:len() return self.count end

return M
