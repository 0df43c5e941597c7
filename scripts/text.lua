-- text.lua - text helpers for the engine-side scripts and personas: normalisation for matching
-- (lowercase incl. Cyrillic, no punctuation), phrase search on word boundaries, language guess,
-- a deterministic hash for "variety without randomness".
-- Runs inside the sandbox (module "text"); pure functions, no state.

local M = {}

-- multi-byte punctuation seen in transcripts and chat: « » “ ” „ ‘ ’ — – … ¿ ¡
local UNICODE_PUNCT = {
  "\194\171", "\194\187", "\226\128\156", "\226\128\157", "\226\128\158", "\226\128\152",
  "\226\128\153", "\226\128\148", "\226\128\147", "\226\128\166", "\194\191", "\194\161",
}

--- Lowercase, apostrophes dropped ("what's" -> "whats"), ё -> е, punctuation -> spaces,
--- whitespace collapsed and trimmed.
function M.normalize(s)
  if type(s) ~= "string" then return "" end
  s = kmk.lower(s)
  for _, p in ipairs(UNICODE_PUNCT) do
    if p == "\226\128\153" then
      s = s:gsub(p, "", nil)
    else
      s = s:gsub(p, " ")
    end
  end
  s = s:gsub("'", ""):gsub("\209\145", "\208\181") -- ё -> е
  s = s:gsub("%p", " "):gsub("%s+", " ")
  return (s:gsub("^ ", ""):gsub(" $", ""))
end

--- Does normalised text `norm` contain phrase (normalised here) on word boundaries?
function M.has(norm, phrase)
  local p = M.normalize(phrase)
  if p == "" then return false end
  return (" " .. norm .. " "):find(" " .. p .. " ", 1, true) ~= nil
end

--- Does norm contain any of the phrases? Returns the first that matched.
function M.has_any(norm, phrases)
  for _, p in ipairs(phrases) do
    if M.has(norm, p) then return p end
  end
  return nil
end

--- Removes every occurrence of the phrases (longest first) from norm.
function M.remove(norm, phrases)
  local list = {}
  for _, p in ipairs(phrases) do list[#list + 1] = M.normalize(p) end
  table.sort(list, function(a, b) return #a > #b end)
  local s = " " .. norm .. " "
  for _, p in ipairs(list) do
    if p ~= "" then
      local pat = " " .. p:gsub("%p", "%%%0") .. " "
      local n
      repeat s, n = s:gsub(pat, " ") until n == 0
    end
  end
  return (s:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", ""))
end

function M.has_cyrillic(s)
  return type(s) == "string" and s:find("[\208\209][\128-\191]") ~= nil
end

--- "ru" when the text has Cyrillic, else "en" (what the speaker used, for replying in kind).
function M.detect_lang(s)
  return M.has_cyrillic(s) and "ru" or "en"
end

--- FNV-1a over the bytes: stable across runs and platforms.
function M.hash(s)
  local h = 2166136261
  for i = 1, #s do
    h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff
  end
  return h
end

--- Deterministic choice from a list, seeded by a string.
function M.pick(list, seed)
  if #list == 0 then return nil end
  return list[M.hash(seed or "") % #list + 1]
end

--- Splits normalised text into words.
function M.words(norm)
  local out = {}
  for w in norm:gmatch("%S+") do out[#out + 1] = w end
  return out
end

--- Cuts s to at most n code points (on a code point boundary).
function M.cut(s, n)
  if utf8.len(s) == nil or utf8.len(s) <= n then return s end
  return s:sub(1, utf8.offset(s, n + 1) - 1)
end

return M
