-- gates.lua - phrases and patterns Whisper invents on silence and noise, per language. A cloud
-- transcript (Groq) that matches one is dropped ("transcript_dropped", reason "known_phrase").
-- Edit freely: the running agent reloads this file when it changes ("gates_reload" event; a
-- broken edit keeps the lists in use and says why).
--
--   exact      the whole transcript is this phrase
--   contains   the transcript contains this phrase
--   patterns   Lua patterns matched against the transcript
-- Phrases are compared after normalising both sides: lowercase (Cyrillic too), ё -> е,
-- punctuation -> space, apostrophes dropped ("Don't" -> "dont"). Patterns see the same
-- normalised text, so write them in lowercase without punctuation.
-- Loaded in the engine's Lua sandbox (engine/brain/gate_lists.c); module "gates".

local M = {}

M.lists = {
  en = {
    exact = {
      "thank you for watching", "thanks for watching", "thank you so much for watching",
      "thank you for watching and see you next time", "please subscribe", "like and subscribe",
      "dont forget to subscribe", "see you in the next video", "see you next time", "you",
      "bye bye", "music", "applause", "silence", "the end",
    },
    contains = {
      "subtitles by the amara org community", "amara org", "subtitles by", "captions by",
      "transcribed by", "thanks for watching", "thank you for watching", "subscribe to my channel",
      "please subscribe", "www ",
    },
    patterns = {
      "^%s*thank you%s*$",                 -- a lone "thank you." on silence
      "^%s*bye%s*$",
      "^%s*so%s*$",
      "copyright %d%d%d%d",
      "^(%a+)%s+%1%s+%1%s+%1",             -- one word four times over
    },
  },
  ru = {
    exact = {
      "продолжение следует", "спасибо за просмотр", "спасибо за внимание", "до новых встреч",
      "подписывайтесь на канал", "ставьте лайки", "музыка", "аплодисменты", "конец",
    },
    contains = {
      "субтитры сделал", "субтитры создавал", "субтитры подготовил", "редактор субтитров",
      "корректор субтитров", "продолжение следует", "спасибо за просмотр",
      "подписывайтесь на канал", "ставьте лайки", "dimatorzok", "игорь негода",
    },
    patterns = {
      "^%s*спасибо%s*$",
      "редактор.*субтитр",
    },
  },
}

-- ---------------------------------------------------------------- used by the engine

local function strings(v, where)
  if v == nil then return {} end
  if type(v) ~= "table" then error(where .. " must be a list of strings", 0) end
  local out = {}
  for i, s in ipairs(v) do
    if type(s) ~= "string" then error(where .. "[" .. i .. "] must be a string", 0) end
    out[#out + 1] = s
  end
  return out
end

--- export() -> {lang = {exact = {...}, contains = {...}, patterns = {...}}, ...}, validated
--- (a bad pattern is reported here, not at the first transcript)
function M.export()
  if type(M.lists) ~= "table" then error("gates.lists must be a table: lang -> lists", 0) end
  local out = {}
  for lang, t in pairs(M.lists) do
    if type(lang) ~= "string" or not lang:match("^%a%a%a?$") then
      error("gates.lists: language keys are 2-3 letter codes (got " .. tostring(lang) .. ")", 0)
    end
    if type(t) ~= "table" then error("gates.lists." .. lang .. " must be a table", 0) end
    local e = {
      exact = strings(t.exact, lang .. ".exact"),
      contains = strings(t.contains, lang .. ".contains"),
      patterns = strings(t.patterns, lang .. ".patterns"),
    }
    for i, p in ipairs(e.patterns) do
      local ok, err = pcall(string.find, "", p)
      if not ok then
        error(lang .. ".patterns[" .. i .. "] is not a valid Lua pattern: " .. tostring(err), 0)
      end
    end
    out[lang] = e
  end
  return out
end

local function normalise(s)
  s = kmk.lower(s):gsub("ё", "е"):gsub("'", ""):gsub("’", "")
  for _, c in ipairs({"«", "»", "—", "–", "…"}) do s = s:gsub(c, " ") end
  s = s:gsub("[%p%c]", " "):gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
  return s
end
M.normalise = normalise

--- match(text, lang) -> the first pattern of lang (every language when lang is nil) that the
--- normalised transcript matches, or nil
function M.match(text, lang)
  local norm = normalise(text)
  for l, t in pairs(M.lists) do
    if lang == nil or lang == "" or l == lang:sub(1, #l) then
      for _, p in ipairs(t.patterns or {}) do
        if norm:find(p) then return p end
      end
    end
  end
  return nil
end

return M
