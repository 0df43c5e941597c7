-- moderator.lua - Warden, a moderator that speaks ONLY when a rule is broken: a banned word in
-- what someone says or writes, or one person holding the floor too long while others try to get a
-- word in (or talking longer than max_talk_s at all). Warnings escalate per person (strikes in
-- kmk.memory, so they survive a reload) and a cooldown keeps Warden from nagging. Never answers
-- questions, never greets; policy.yield is off because a rule break should be heard.

local function strike(ctx, who, why)
  local m = ctx.user(who)
  if not m then return nil end
  m.strikes = (m.strikes or 0) + 1
  m.last_rule = why
  ctx.state.warnings = ctx.state.warnings + 1
  return m.strikes
end

local function warn(ctx, who, why, first, again)
  local n = strike(ctx, who, why)
  if not n then return nil end
  local text = (n == 1 and first or again):gsub("{who}", who)
  if n >= 3 then text = text .. " That is warning number " .. n .. "." end
  return {thought = "rule broken by " .. who .. ": " .. why, should_speak = true,
          response = text}
end

local function rules(ctx)
  if ctx.kind ~= "say" then return nil end -- no greetings
  local bad = ctx.persona.moderation.banned_words
  for _, w in ipairs(bad) do
    if ctx.has(w) then
      return warn(ctx, ctx.speaker, "banned word",
        "{who}, please keep it civil. No insults here.",
        "{who}, that is not okay. Keep it civil.")
    end
  end
  return nil -- everything else is none of Warden's business
end

--- Stage events: who is speaking since when; long turns over others.
local function on_event(ev, ctx)
  local st = ctx.state
  local who = ev.speaker
  if type(who) ~= "string" then return nil end
  if ev.type == "speech_start" then
    -- someone starts while another is mid-turn: remember they tried to get a word in
    for other, since in pairs(st.talking) do
      if other ~= who and (ev.t or 0) - since > 3 then st.overlapped[other] = who end
    end
    st.talking[who] = ev.t or kmk.now()
    return nil
  end
  if ev.type == "speech_end" then
    st.talking[who] = nil
    local by = st.overlapped[who]
    st.overlapped[who] = nil
    local dur = tonumber(ev.duration_s) or 0
    local mod = ctx.persona.moderation
    if dur > mod.max_talk_s then
      return warn(ctx, who, "talked " .. math.floor(dur) .. " s",
        "{who}, that was a long one. Please give others a chance to talk.",
        "{who}, again: keep it short and let others speak.")
    end
    if by and dur > mod.over_others_s then
      return warn(ctx, who, "talked over " .. by,
        "{who}, " .. by .. " was trying to say something. Let them speak.",
        "{who}, please stop talking over " .. by .. ".")
    end
  end
  if ev.type == "leave" then st.talking[who] = nil end
  return nil
end

return {
  name = "Warden",
  description = "a moderator that speaks only when a rule is broken",
  languages = {"en", "ru"},
  wake_words = {"warden"},
  voices = {en = {engine = "flite", voice = "kal16", rate = 170},
            ru = {engine = "espeak", voice = "ru", rate = 160, pitch = 40}},
  context_size = 10,
  max_reply_chars = 200,
  policy = {cooldown = 8, may_interrupt = false, yield = false},
  moderation = {
    banned_words = {"idiot", "stupid", "shut up", "moron", "loser", "дурак", "идиот", "заткнись"},
    max_talk_s = 25,    -- a single turn longer than this is too long
    over_others_s = 8,  -- talking on this long after someone tried to get a word in
  },
  state = {warnings = 0, talking = {}, overlapped = {}},
  prompt = [[
You are {name}, the moderator of a group voice chat. You speak only when a rule is broken
(insults, one person talking too long over others); otherwise you stay silent. Be brief and calm.]],
  rules = rules,
  on_event = on_event,
}
