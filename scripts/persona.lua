-- persona.lua - checks a persona table and fills its defaults. A persona file returns a table:
--
--   name            string (required)
--   languages       list of language codes, first = default (required), e.g. {"ru", "en"}
--   wake_words      list of strings; default {lower(name)}; matched on word boundaries,
--                   case-insensitively (Cyrillic too)
--   voices          map lang -> {engine = "espeak"|"flite"|"edge", voice = string, rate = int?, pitch = int?}
--                   ("edge": an Edge neural voice such as "ru-RU-SvetlanaNeural", used when Edge-TTS
--                   is on; otherwise / on failure flite "slt" for en, espeak <lang> for others)
--   context_size    events in the window (default 15, 1..200)
--   max_reply_chars reply cap in characters (default 400, 20..2000)
--   prompt          system prompt template; {name}, {languages}, {wake_words}, {max_reply_chars}
--   rules           function(ctx) -> nil | string | {should_speak, response, thought, lang}
--                   the offline decision (no LLM); see scripts/meta/kmk.lua for ctx
--   after_llm       function(decision, ctx) -> decision   optional post-processing
--   policy          {cooldown = seconds (0), may_interrupt = bool (false), yield = bool (false),
--                    early_speech = bool (true, false if after_llm is set): with an LLM, start
--                    speaking at the answer's first sentence once it says should_speak (stopped
--                    if the final decision differs; never while a cooldown holds back an
--                    unsolicited reply),
--                    speculative_stt = bool (false): transcribe at a pause in a person's speech
--                    and reuse the result if the turn ends there (cloud STT)}
--                   cooldown: after speaking, unsolicited replies wait this long (being called by
--                   name always answers); yield: speak only when no other persona wants the floor
--   moderation      {banned_words = {strings}, max_talk_s = seconds, ...}: data for the hooks
--   state           table: the persona's initial state (ctx.state); survives reloads
--   on_tick         function(ctx) -> nil | string | decision   once a second (timeline)
--   on_event        function(ev, ctx) -> nil | string | decision   stage events: speech_start,
--                   speech_end (duration_s), interrupted (heard), ...
--   on_forget       function(name, state) -> number?   a user asked to be forgotten: erase what
--                   the persona keeps about them in its own state (the engine already erased
--                   their window lines and kmk.memory(name)); returns how many items it erased
--
-- check(p) returns the normalised persona, or nil, field, message (C turns the field into a
-- file:line). Runs inside the sandbox (module "persona").

local text = use("text")

local M = {}

local KNOWN = {
  name = true, languages = true, wake_words = true, voices = true, context_size = true,
  max_reply_chars = true, prompt = true, rules = true, after_llm = true, description = true,
  data = true, policy = true, moderation = true, state = true, on_tick = true, on_event = true,
  on_forget = true,
}

M.DEFAULT_PROMPT = [[
You are {name}, a friendly voice companion in a group voice chat. You speak {languages}.
People address you by name ({wake_words}). Answer when you are addressed or clearly expected to
answer, greet people who join, and stay silent while people talk to each other.
Reply in the language the speaker used. Keep replies short and natural for speech
(at most {max_reply_chars} characters, no markdown, no emoji).]]

local function is_list(t)
  if type(t) ~= "table" then return false end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

local function int_in(v, lo, hi)
  return math.type(v) == "integer" and v >= lo and v <= hi
end

--- check(p) -> normalised persona | nil, field, message
function M.check(p)
  if type(p) ~= "table" then
    return nil, nil, "a persona file must return a table (got " .. type(p) .. ")"
  end
  for k in pairs(p) do
    if type(k) ~= "string" or not KNOWN[k] then
      kmk.log("warn", "persona: unknown field '" .. tostring(k) .. "' (ignored)")
    end
  end
  if type(p.name) ~= "string" or p.name == "" or #p.name > 63 then
    return nil, "name", p.name == nil and "'name' is missing (a string is required)"
      or "'name' must be a non-empty string of at most 63 bytes"
  end
  if not is_list(p.languages) or #p.languages == 0 or #p.languages > 8 then
    return nil, "languages", "'languages' must be a list of 1 to 8 language codes, e.g. {\"en\"}"
  end
  for _, l in ipairs(p.languages) do
    if type(l) ~= "string" or not l:match("^%l%l%l?$") then
      return nil, "languages", "'languages' entries must be codes like \"en\" (got " .. tostring(l) .. ")"
    end
  end
  local wake = p.wake_words
  if wake == nil then wake = {p.name} end
  if not is_list(wake) or #wake == 0 or #wake > 16 then
    return nil, "wake_words", "'wake_words' must be a list of 1 to 16 strings"
  end
  local wake_norm = {}
  for _, w in ipairs(wake) do
    if type(w) ~= "string" or text.normalize(w) == "" or #w > 63 then
      return nil, "wake_words", "'wake_words' entries must be non-empty strings of at most 63 bytes"
    end
    wake_norm[#wake_norm + 1] = text.normalize(w)
  end
  local voices = {}
  if p.voices ~= nil then
    if type(p.voices) ~= "table" then
      return nil, "voices", "'voices' must be a table: lang -> {engine, voice, rate, pitch}"
    end
    for lang, v in pairs(p.voices) do
      if type(lang) ~= "string" or type(v) ~= "table" then
        return nil, "voices", "'voices' must map a language code to {engine = ..., voice = ...}"
      end
      if v.engine ~= "espeak" and v.engine ~= "flite" and v.engine ~= "edge" then
        return nil, "voices", "voices." .. lang .. ".engine must be \"espeak\", \"flite\" or \"edge\""
      end
      if type(v.voice) ~= "string" or v.voice == "" or #v.voice > 63 then
        return nil, "voices", "voices." .. lang .. ".voice must be a non-empty string"
      end
      if v.rate ~= nil and not int_in(v.rate, 50, 500) then
        return nil, "voices", "voices." .. lang .. ".rate must be an integer 50..500 (words/min)"
      end
      if v.pitch ~= nil and not int_in(v.pitch, 0, 100) then
        return nil, "voices", "voices." .. lang .. ".pitch must be an integer 0..100"
      end
      voices[#voices + 1] = {lang = lang, engine = v.engine, voice = v.voice,
                             rate = v.rate or 0, pitch = v.pitch or 0}
    end
    if #voices > 8 then return nil, "voices", "at most 8 voices" end
    table.sort(voices, function(a, b) return a.lang < b.lang end)
  end
  local ctx_size = p.context_size == nil and 15 or p.context_size
  if not int_in(ctx_size, 1, 200) then
    return nil, "context_size", "'context_size' must be an integer 1..200"
  end
  local max_reply = p.max_reply_chars == nil and 400 or p.max_reply_chars
  if not int_in(max_reply, 20, 2000) then
    return nil, "max_reply_chars", "'max_reply_chars' must be an integer 20..2000"
  end
  if p.prompt ~= nil and (type(p.prompt) ~= "string" or p.prompt == "") then
    return nil, "prompt", "'prompt' must be a non-empty string"
  end
  if p.rules ~= nil and type(p.rules) ~= "function" then
    return nil, "rules", "'rules' must be a function(ctx)"
  end
  if p.after_llm ~= nil and type(p.after_llm) ~= "function" then
    return nil, "after_llm", "'after_llm' must be a function(decision, ctx)"
  end
  for _, hook in ipairs({"on_tick", "on_event", "on_forget"}) do
    if p[hook] ~= nil and type(p[hook]) ~= "function" then
      return nil, hook, "'" .. hook .. "' must be a function"
    end
  end
  local policy = p.policy == nil and {} or p.policy
  if type(policy) ~= "table" then
    return nil, "policy", "'policy' must be a table {cooldown, may_interrupt, yield}"
  end
  if policy.cooldown ~= nil and (type(policy.cooldown) ~= "number" or policy.cooldown < 0
      or policy.cooldown > 3600) then
    return nil, "policy", "policy.cooldown must be a number of seconds 0..3600"
  end
  for _, k in ipairs({"may_interrupt", "yield", "early_speech", "speculative_stt"}) do
    if policy[k] ~= nil and type(policy[k]) ~= "boolean" then
      return nil, "policy", "policy." .. k .. " must be true or false"
    end
  end
  local mod = p.moderation
  if mod ~= nil then
    if type(mod) ~= "table" then
      return nil, "moderation", "'moderation' must be a table (e.g. {banned_words = {...}})"
    end
    if mod.banned_words ~= nil then
      if not is_list(mod.banned_words) then
        return nil, "moderation", "moderation.banned_words must be a list of strings"
      end
      for _, w in ipairs(mod.banned_words) do
        if type(w) ~= "string" or text.normalize(w) == "" then
          return nil, "moderation", "moderation.banned_words entries must be non-empty strings"
        end
      end
    end
    if mod.max_talk_s ~= nil and (type(mod.max_talk_s) ~= "number" or mod.max_talk_s <= 0) then
      return nil, "moderation", "moderation.max_talk_s must be a positive number of seconds"
    end
  end
  if p.state ~= nil and type(p.state) ~= "table" then
    return nil, "state", "'state' must be a table (the persona's initial state)"
  end
  return {
    policy = {cooldown = policy.cooldown or 0, may_interrupt = policy.may_interrupt == true,
              yield = policy.yield == true,
              -- an after_llm hook may rewrite or silence the answer, and a sentence already
              -- heard cannot be taken back: such personas speak early only if they say so
              early_speech = policy.early_speech == true
                or (policy.early_speech == nil and p.after_llm == nil),
              speculative_stt = policy.speculative_stt == true},
    moderation = mod or {},
    state = p.state,
    on_tick = p.on_tick,
    on_event = p.on_event,
    on_forget = p.on_forget,
    name = p.name,
    languages = p.languages,
    wake_words = wake_norm,
    voices = voices,
    context_size = ctx_size,
    max_reply_chars = max_reply,
    prompt = p.prompt or M.DEFAULT_PROMPT,
    rules = p.rules,
    after_llm = p.after_llm,
    data = p.data,
    source = p,
  }
end

--- The facts C needs (plain data only).
function M.info(n)
  return {
    name = n.name, languages = n.languages, wake_words = n.wake_words, voices = n.voices,
    context_size = n.context_size, max_reply_chars = n.max_reply_chars,
    has_on_tick = n.on_tick ~= nil, has_on_event = n.on_event ~= nil, may_interrupt = n.policy.may_interrupt,
    early_speech = n.policy.early_speech, speculative_stt = n.policy.speculative_stt,
  }
end

return M
