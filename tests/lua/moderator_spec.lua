-- moderator_spec.lua - personas/moderator.lua (Warden): silent unless a rule is broken.
local spec = use("spec")
local describe, it, expect = spec.describe, spec.it, spec.expect
local brain = use("brain")

local function agent()
  local a = brain.new(use("persona_file"))
  a.force_llm = false
  kmk.cooldown(0) -- each test starts without a pending cooldown
  return a
end

local t = 0
local function ev(a, e)
  t = t + 1
  e.t = e.t or t
  local act = a:on_event(e, t)
  local d = act and act.decision
  return d and d.should_speak and d.response or nil, d
end
local function say(a, who, s) return ev(a, {type = "transcript", speaker = who, text = s}) end

describe("Warden the moderator", function()
  it("says nothing to greetings, questions or being called by name", function()
    local a = agent()
    expect(ev(a, {type = "join", speaker = "al"})).to_be_nil()
    expect(say(a, "al", "hello everyone how are you")).to_be_nil()
    expect(say(a, "al", "warden what are the rules")).to_be_nil()
    expect(say(a, "al", "хорошая погода сегодня")).to_be_nil()
  end)

  it("warns about a banned word, naming the speaker", function()
    local a = agent()
    local r = say(a, "bo", "you are an idiot")
    expect(r).to_contain("bo, please keep it civil")
    expect(kmk.memory("bo").strikes).to_be(1)
  end)

  it("catches Russian insults too", function()
    local a = agent()
    expect(say(a, "vova", "ты дурак")).to_contain("vova")
  end)

  it("does not nag within its cooldown, then escalates", function()
    local a = agent()
    expect(say(a, "cy", "shut up")).to_contain("cy")
    expect(say(a, "cy", "shut up")).to_be_nil() -- cooling down (8 s), strike still counted
    kmk.cooldown(0)
    local r = say(a, "cy", "stupid")
    expect(r).to_contain("not okay")
    expect(r).to_contain("warning number 3")
  end)

  it("does not match banned words inside other words", function()
    local a = agent()
    expect(say(a, "di", "the idiotic plan was stupendous")).to_be_nil()
  end)

  it("warns a speaker whose single turn runs too long", function()
    local a = agent()
    ev(a, {type = "speech_start", speaker = "ed"})
    local r = ev(a, {type = "speech_end", speaker = "ed", duration_s = 40})
    expect(r).to_contain("ed, that was a long one")
  end)

  it("warns someone who keeps talking over a person trying to get a word in", function()
    local a = agent()
    ev(a, {type = "speech_start", speaker = "fay", t = 1000})
    ev(a, {type = "speech_start", speaker = "gil", t = 1010}) -- gil tries 10 s into fay's turn
    ev(a, {type = "speech_end", speaker = "gil", t = 1011, duration_s = 1})
    local r = ev(a, {type = "speech_end", speaker = "fay", t = 1015, duration_s = 15})
    expect(r).to_contain("gil was trying to say something")
  end)

  it("lets ordinary turn-taking pass", function()
    local a = agent()
    ev(a, {type = "speech_start", speaker = "hu", t = 2000})
    local r = ev(a, {type = "speech_end", speaker = "hu", t = 2006, duration_s = 6})
    expect(r).to_be_nil()
  end)

  it("rejects a broken moderation table", function()
    local p = use("persona")
    local n, field = p.check({name = "W", languages = {"en"}, moderation = {banned_words = "x"}})
    expect(n).to_be_nil()
    expect(field).to_be("moderation")
  end)
end)
