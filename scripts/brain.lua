-- brain.lua - the decision flow for one persona. C (engine/brain/brain.c) calls, through the one
-- funnel:
--   init()                          -> persona info for C      (persona = use("persona_file"))
--   on_event(event, request_id)     -> nil | {kind = "decision", decision = {...}}
--                                           | {kind = "llm", messages = {...}, lang, addressed, early}
--   on_llm(request_id, decision?, error?, fallback?) -> {kind = "decision", decision = {...}}
--
-- On each event: classify it; conversation entries (people talking, joins, leaves, the persona's
-- own speech) go into the window; what people say and joins are considered for an answer (never
-- the persona's own speech). With an LLM the window becomes a request; without one the
-- persona's offline rules decide. An LLM failure falls back to the rules for that event.
-- Runs inside the sandbox (module "brain").

local text = use("text")
local window = use("window")
local prompt = use("prompt")
local persona_mod = use("persona")

local M = {}

-- event types
M.SAY = {transcript = true, chat = true, message = true}
M.SELF = {bot_speech = true, bot_said = true, audio_out_start = true, agent_said = true}
M.JOIN = {join = true}
M.LEAVE = {leave = true}
M.MAX_PENDING = 4

local Agent = {}
Agent.__index = Agent

local function deep_copy(v, depth)
  if type(v) ~= "table" then return v end
  depth = (depth or 0) + 1
  if depth > 32 then error("state nested deeper than 32 levels") end
  local c = {}
  for k, x in pairs(v) do c[deep_copy(k, depth)] = deep_copy(x, depth) end
  return c
end
M.deep_copy = deep_copy

-- The conversation state that outlives a reload lives in the engine's store (kmk.memory,
-- kmk.state, kmk.mute, kmk.cooldown, kmk.language; C hands it to the new state on a reload):
-- per-user memory, the persona's own state (seeded here from the persona's `state`: keys the
-- running state lacks), mutes (the user's words stay in the window but are never answered), the
-- cooldown of unsolicited replies and a switched language.
local function seed_state(n)
  if type(n.state) ~= "table" then return end
  local st = kmk.state()
  for k, v in pairs(n.state) do
    if st[k] == nil then st[k] = deep_copy(v) end
  end
end

local function new_checked(n)
  seed_state(n)
  return setmetatable({
    persona = n,
    window = window.new(n.context_size),
    pending = {}, -- request_id -> ctx, at most MAX_PENDING
    pending_order = {},
  }, Agent)
end

--- new(persona_table) -> agent; raises "field: message" for a broken persona
function M.new(p)
  local n, field, msg = persona_mod.check(p)
  if not n then error((field or "persona") .. ": " .. msg, 2) end
  return new_checked(n)
end

local function event_text(ev)
  local s = ev.text or ev.transcript or ev.content
  if type(s) ~= "string" then return "" end
  return text.cut(s, window.MAX_TEXT)
end

--- classify(ev) -> "say" | "self" | "bot" | "join" | "leave" | nil (not a conversation event)
--- "bot": another persona's speech; it goes into the window but is never answered (no loops).
function Agent:classify(ev)
  local ty = ev.type
  if type(ty) ~= "string" then return nil end
  local speaker = type(ev.speaker) == "string" and ev.speaker or ""
  local own = speaker == "" or kmk.lower(speaker) == kmk.lower(self.persona.name)
  if M.SELF[ty] then return own and "self" or "bot" end
  if ev.self == true then return "self" end
  if M.SAY[ty] then return own and speaker ~= "" and "self" or "say" end
  if M.JOIN[ty] then return not own and "join" or nil end
  if M.LEAVE[ty] then return not own and "leave" or nil end
  return nil
end

--- The language the conversation was last held in (for joins), else the persona's first.
function Agent:recent_lang()
  for k = 1, self.window:len() do
    local e = self.window:last(k)
    if e.lang and (e.kind == "say" or e.kind == "self") then return e.lang end
  end
  return self.persona.languages[1]
end

function Agent:supported_lang(lang)
  for _, l in ipairs(self.persona.languages) do
    if l == lang then return lang end
  end
  return self.persona.languages[1]
end

--- Builds the ctx handed to rules and prompts for a considered entry.
function Agent:context(entry)
  local p = self.persona
  local norm = text.normalize(entry.text or "")
  local matched = entry.kind == "say" and text.has_any(norm, p.wake_words) or nil
  local prev = self.window:last(2)
  local seed = (entry.speaker or "") .. "|" .. norm .. "|" .. entry.kind
  local ctx = {
    kind = entry.kind,
    speaker = entry.speaker,
    text = entry.text or "",
    norm = norm,
    rest = matched and text.remove(norm, p.wake_words) or norm,
    addressed = matched ~= nil,
    wake_word = matched,
    lang = entry.kind == "say" and self:supported_lang(entry.lang) or self:recent_lang(),
    follow_up = prev ~= nil and prev.kind == "self" and entry.kind == "say"
      and (entry.t - prev.t) <= 20,
    t = entry.t,
    now = kmk.now(),
    window = self.window:items(),
    persona = p.source,
    seed = seed,
  }
  local lang = kmk.language()
  if lang and entry.kind ~= "say" then ctx.lang = self:supported_lang(lang) end
  ctx.state = kmk.state()
  ctx.memory = self:user(entry.speaker)
  ctx.user = function(name) return self:user(name) end
  ctx.muted = function(name) return type(name) == "string" and kmk.muted(name) end
  ctx.cooldown = kmk.cooldown_left()
  ctx.pick = function(list) return text.pick(list, seed) end
  ctx.has = function(...)
    for _, ph in ipairs({...}) do
      if type(ph) == "table" then
        if text.has_any(norm, ph) then return true end
      elseif text.has(norm, ph) then
        return true
      end
    end
    return false
  end
  return ctx
end

local function silent(thought)
  return {thought = thought, should_speak = false, response = ""}
end

--- Runs the persona's offline rules; always returns a decision table.
function Agent:rules_decision(ctx, why)
  local rules = self.persona.rules
  local d
  if rules then
    d = rules(ctx)
  end
  if d == nil then
    d = silent(why or (ctx.addressed and "addressed, but the rules had nothing to say"
      or "not addressed; people are talking to each other"))
  elseif type(d) == "string" then
    d = {thought = "offline rules", should_speak = true, response = d}
  elseif type(d) ~= "table" then
    error("rules(ctx) must return nil, a string or a decision table (got " .. type(d) .. ")")
  end
  d = self:apply(d, ctx) -- a language switch applies to this reply too
  d.lang = d.lang or ctx.lang
  if d.should_speak and d.addressed == nil then d.addressed = ctx.speaker end
  return d
end

--- A hook (on_tick, on_event) that returns nil | string | decision -> action | nil
function Agent:hook_action(d, ctx)
  if d == nil then return nil end
  if type(d) == "string" then d = {thought = "hook", should_speak = true, response = d}
  elseif type(d) ~= "table" then error("a hook must return nil, a string or a decision table") end
  if d.should_speak == nil then d.should_speak = d.response ~= nil and d.response ~= "" end
  d.thought = d.thought or "hook"
  d = self:apply(d, ctx)
  d.lang = d.lang or ctx.lang
  return {kind = "decision", decision = d}
end

--- Events that are not conversation lines: ticks and stage events (speech_start, speech_end,
--- interrupted, ...) go to the persona's on_tick / on_event hooks when it defines them.
function Agent:on_other(ev)
  local p = self.persona
  local ty = ev.type
  if ty == "interrupted" and type(ev.speaker) == "string"
    and kmk.lower(ev.speaker) == kmk.lower(p.name) then
    -- the part of our reply that was heard replaces the full text in the window
    for k = 1, math.min(3, self.window:len()) do
      local e = self.window:last(k)
      if e.kind == "self" then
        e.heard, e.interrupted = type(ev.heard) == "string" and ev.heard or "", true
        break
      end
    end
  end
  local hook = ty == "tick" and p.on_tick or p.on_event
  if not hook then return nil end
  local entry = {t = tonumber(ev.t) or kmk.now(), kind = ty,
                 speaker = type(ev.speaker) == "string" and ev.speaker or nil, text = ""}
  local ctx = self:context(entry)
  ctx.event = ev
  if ty == "tick" then return self:hook_action(hook(ctx), ctx) end
  return self:hook_action(hook(ev, ctx), ctx)
end

--- The memory table of one user (created on first use); nil for no user.
function Agent:user(name)
  if type(name) ~= "string" or name == "" or #name > 64 or name == "someone" then return nil end
  return kmk.memory(name)
end

--- Applies a decision's actions to the store and the speaking policy; returns the decision.
--- Actions (all optional): cooldown = seconds, mute = name | {names}, unmute = name | {names},
--- language = code (switch; false = follow the speaker again), yield = bool.
function Agent:apply(d, ctx)
  local policy = self.persona.policy
  local function names(v)
    if type(v) == "string" then return {v} end
    if type(v) == "table" then return v end
    return {}
  end
  for _, n in ipairs(names(d.mute)) do kmk.mute(tostring(n), true) end
  for _, n in ipairs(names(d.unmute)) do kmk.mute(tostring(n), false) end
  if d.language == false then kmk.language(false)
  elseif type(d.language) == "string" then
    local l = self:supported_lang(d.language)
    kmk.language(l)
    if d.should_speak and not d.lang then d.lang = l end
  end
  d.mute, d.unmute, d.language = nil, nil, nil
  d.addressed_me = ctx and ctx.addressed or false
  if d.yield == nil then d.yield = policy.yield end
  local left = kmk.cooldown_left()
  if d.should_speak and not d.addressed_me and left > 0 then
    d.thought = "cooling down (" .. string.format("%.1f", left) .. " s left); would have said: "
      .. tostring(d.response)
    d.should_speak, d.response = false, ""
  end
  if d.should_speak then
    local cd = tonumber(d.cooldown) or policy.cooldown
    if cd and cd > 0 then kmk.cooldown(math.min(cd, 3600)) end
  end
  d.cooldown = nil
  return d
end

function Agent:remember(id, ctx)
  self.pending[id] = ctx
  local order = self.pending_order
  order[#order + 1] = id
  while #order > M.MAX_PENDING do
    self.pending[table.remove(order, 1)] = nil
  end
end

--- Whether C may speak this answer's first sentence while it still streams (policy.early_speech).
--- Not while a cooldown holds back unsolicited replies and this turn did not call the persona:
--- apply() would silence that answer after its first sentence had already been heard.
function Agent:early_allowed(ctx)
  if not self.persona.policy.early_speech then return false end
  return ctx.addressed == true or kmk.cooldown_left() <= 0
end

--- Whether to ask the LLM: kmk.llm_available(), unless agent.force_llm (true/false) overrides it.
function Agent:llm_on()
  if self.force_llm ~= nil then return self.force_llm end
  return kmk.llm_available()
end

--- on_event(ev, request_id) -> action | nil
function Agent:on_event(ev, request_id)
  local kind = self:classify(ev)
  if not kind then return self:on_other(ev) end
  local entry = {
    t = tonumber(ev.t) or kmk.now(),
    kind = kind == "bot" and "say" or kind,
    speaker = type(ev.speaker) == "string" and ev.speaker ~= "" and ev.speaker or "someone",
    text = event_text(ev),
  }
  if kind ~= "join" and kind ~= "leave" then entry.lang = text.detect_lang(entry.text) end
  if kind == "self" then
    entry.speaker = self.persona.name
    if ev.complete == false then entry.interrupted = true end
    -- the engine reports one utterance more than once (audio_out_start, then bot_speech once it
    -- ended): update the entry already in the window instead of adding a second one
    for k = 1, math.min(3, self.window:len()) do
      local e = self.window:last(k)
      if e.kind == "self" and e.text == entry.text then
        e.t, e.interrupted = entry.t, entry.interrupted
        return nil
      end
    end
  end
  self.window:push(entry)
  if kind == "bot" then return nil end
  if kind == "self" or kind == "leave" then return nil end
  if kind == "say" and text.normalize(entry.text) == "" then return nil end
  if kind == "say" and #entry.speaker <= 64 and kmk.muted(entry.speaker) then return nil end
  local ctx = self:context(entry)
  if self:llm_on() and request_id then
    self:remember(request_id, ctx)
    return {
      kind = "llm",
      messages = prompt.messages(self.persona, ctx.window, ctx),
      lang = ctx.lang,
      addressed = ctx.speaker,
      early = self:early_allowed(ctx),
    }
  end
  return {kind = "decision", decision = self:rules_decision(ctx)}
end

--- on_llm(request_id, decision, err, fallback) -> action
--- decision: already validated by C; err: why there is none; fallback: use the offline rules
--- (the LLM failed, as opposed to answering nonsense).
function Agent:on_llm(request_id, decision, err, fallback)
  local ctx = self.pending[request_id]
  self.pending[request_id] = nil
  if not decision then
    if fallback and ctx then
      local d = self:rules_decision(ctx)
      d.thought = "LLM failed (" .. tostring(err) .. "); offline rules: " .. (d.thought or "")
      return {kind = "decision", decision = d}
    end
    return {kind = "decision", decision = silent("no usable LLM answer: " .. tostring(err))}
  end
  if ctx then
    if decision.should_speak and decision.addressed == nil then decision.addressed = ctx.speaker end
    if self.persona.after_llm then
      decision = self.persona.after_llm(decision, ctx) or decision
    end
    decision = self:apply(decision, ctx)
  end
  return {kind = "decision", decision = decision}
end

--- forget(name) -> count: a user asked to be forgotten. Their lines leave the window, LLM requests
--- waiting on their words are dropped, and the persona's on_forget(name, state) erases what it
--- keeps about them in its own state (kmk.memory(name) is erased by C, from the store).
function Agent:forget(name)
  local lname = kmk.lower(name)
  local function theirs(e)
    return e.kind ~= "self" and type(e.speaker) == "string" and kmk.lower(e.speaker) == lname
  end
  local keep, n = {}, 0
  for _, e in ipairs(self.window:items()) do
    if theirs(e) then n = n + 1 else keep[#keep + 1] = e end
  end
  if n > 0 then
    self.window = window.new(self.persona.context_size)
    for _, e in ipairs(keep) do self.window:push(e) end
  end
  for id, ctx in pairs(self.pending) do
    if type(ctx.speaker) == "string" and kmk.lower(ctx.speaker) == lname then
      self.pending[id] = nil
      n = n + 1
    end
  end
  local hook = self.persona.on_forget
  if hook then
    local k = hook(name, kmk.state())
    if math.type(k) == "integer" and k > 0 then n = n + k end
  end
  return n
end

-- the single agent C drives (one persona per state)
local current

--- init() -> {info = ...} | {error = message, field = name-or-nil}
function M.init()
  local n, field, msg = persona_mod.check(use("persona_file"))
  if not n then return {error = msg, field = field} end
  current = new_checked(n)
  return {info = persona_mod.info(n)}
end

function M.on_event(ev, request_id)
  return current:on_event(ev, request_id)
end

function M.on_llm(request_id, decision, err, fallback)
  return current:on_llm(request_id, decision, err, fallback)
end

function M.agent() return current end

function M.forget(name)
  if type(name) ~= "string" or name == "" then return 0 end
  return current:forget(name)
end

--- export_state() -> plain data handed to the next state on a hot reload
--- (the store - memory, state, mutes, cooldown, language - is handed over by C)
function M.export_state()
  return {version = 1, window = current.window:items()}
end

--- import_state(s): takes over the window (the newest entries if the new window is smaller)
function M.import_state(s)
  if type(s) ~= "table" or s.version ~= 1 or type(s.window) ~= "table" then return end
  for _, e in ipairs(s.window) do
    if type(e) == "table" and type(e.kind) == "string" then current.window:push(e) end
  end
end

--- dry_run() -> {ok = true} | {error = "file:line: message"}: the new persona's hooks on the
--- current window (its last line, and a tick if it has on_tick). The window is restored here,
--- the store by C (from a snapshot).
function M.dry_run()
  local a = current
  local saved_items = deep_copy(a.window:items())
  local ok, err = pcall(function()
    for k = 1, a.window:len() do
      local e = a.window:last(k)
      if e.kind == "say" then
        a:rules_decision(a:context(e))
        break
      end
    end
    if a.persona.on_tick then
      local ctx = a:context({t = kmk.now(), kind = "tick", text = ""})
      a:hook_action(a.persona.on_tick(ctx), ctx)
    end
  end)
  a.window = window.new(a.persona.context_size)
  for _, e in ipairs(saved_items) do a.window:push(e) end
  if not ok then return {error = tostring(err)} end
  return {ok = true}
end

return M
