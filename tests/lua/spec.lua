-- spec.lua - a tiny describe/it/expect for specs that run INSIDE the real sandbox (loaded as
-- module "spec" by tests/unit/test_lua_specs.c; each spec file does `local spec = use("spec")`).
-- The runner calls count() after loading a spec file, then run(i) for each test through the
-- engine's call funnel (so each test has its own budget).

local M = {}
local tests = {}
local prefix = {}

function M.describe(name, fn)
  prefix[#prefix + 1] = name
  fn()
  prefix[#prefix] = nil
end

function M.it(name, fn)
  local full = table.concat(prefix, " ") .. (#prefix > 0 and " " or "") .. name
  tests[#tests + 1] = {name = full, fn = fn}
end

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) == "table" then
    local ok, s = pcall(kmk.json_encode, v)
    if ok and s then return s end
  end
  return tostring(v)
end

local function deep_equal(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do
    if not deep_equal(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

local function fail(msg)
  error(msg, 4) -- the spec line: fail <- matcher <- closure <- spec
end

local Expect = {}

--- expect(v).to_be(x) ... (dot calls: each matcher is a closure over v)
function M.expect(v)
  local o, self = {}, {v = v}
  for name, fn in pairs(Expect) do
    o[name] = function(...) return fn(self, ...) end
  end
  return o
end

function Expect:to_be(x)
  if self.v ~= x then fail("expected " .. show(x) .. ", got " .. show(self.v)) end
end
function Expect:to_equal(x)
  if not deep_equal(self.v, x) then fail("expected " .. show(x) .. ", got " .. show(self.v)) end
end
function Expect:to_be_truthy()
  if not self.v then fail("expected a truthy value, got " .. show(self.v)) end
end
function Expect:to_be_falsy()
  if self.v then fail("expected a falsy value, got " .. show(self.v)) end
end
function Expect:to_be_nil()
  if self.v ~= nil then fail("expected nil, got " .. show(self.v)) end
end
function Expect:to_contain(s)
  if type(self.v) ~= "string" or not self.v:find(s, 1, true) then
    fail("expected " .. show(self.v) .. " to contain " .. show(s))
  end
end
function Expect:not_to_contain(s)
  if type(self.v) == "string" and self.v:find(s, 1, true) then
    fail("expected " .. show(self.v) .. " not to contain " .. show(s))
  end
end
function Expect:to_match(p)
  if type(self.v) ~= "string" or not self.v:match(p) then
    fail("expected " .. show(self.v) .. " to match " .. show(p))
  end
end
--- expect(fn).to_raise(substring?)
function Expect:to_raise(s)
  local ok, err = pcall(self.v)
  if ok then fail("expected an error") end
  if s and not tostring(err):find(s, 1, true) then
    fail("expected an error containing " .. show(s) .. ", got " .. show(err))
  end
end

function M.count() return #tests end

--- run(i) -> {name, ok, err}
function M.run(i)
  local t = tests[i]
  local ok, err = pcall(t.fn)
  return {name = t.name, ok = ok, err = ok and "" or tostring(err)}
end

return M
