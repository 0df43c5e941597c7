-- prompt_spec.lua - scripts/prompt.lua and the LLM request built by the brain
local spec = use("spec")
local describe, it, expect = spec.describe, spec.it, spec.expect
local brain = use("brain")
local prompt = use("prompt")

describe("prompt", function()
  it("renders window entries as lines", function()
    expect(prompt.line({t = 1.25, kind = "say", speaker = "alice", text = "hi"}, "K"))
      .to_be("[1.2s] alice: hi")
    expect(prompt.line({t = 2, kind = "join", speaker = "bob"}, "K"))
      .to_be("[2.0s] (bob joined the voice chat)")
    expect(prompt.line({t = 3, kind = "leave", speaker = "bob"}, "K"))
      .to_be("[3.0s] (bob left the voice chat)")
    expect(prompt.line({t = 4, kind = "self", speaker = "K", text = "hello"}, "K"))
      .to_be("[4.0s] K (you): hello")
  end)
  it("builds system + user messages with the JSON contract", function()
    local a = brain.new(use("persona_file"))
    a.force_llm = true
    a:on_event({t = 1, type = "join", speaker = "alice"}, 1)
    a:on_event({t = 2, type = "bot_said", speaker = "Kameko", text = "Hi alice!"}, 2)
    local act = a:on_event({t = 3, type = "transcript", speaker = "alice",
                            text = "kameko how are you"}, 3)
    expect(act.kind).to_be("llm")
    expect(act.lang).to_be("en")
    expect(act.addressed).to_be("alice")
    local m = act.messages
    expect(#m).to_be(2)
    expect(m[1].role).to_be("system")
    expect(m[1].content).to_contain("You are Kameko")
    expect(m[1].content).to_contain("Russian or English")
    expect(m[1].content).to_contain('"should_speak"')
    expect(m[1].content).not_to_contain("{name}")
    expect(m[2].role).to_be("user")
    expect(m[2].content).to_contain("(alice joined the voice chat)\n[2.0s] Kameko (you): Hi alice!\n"
      .. "[3.0s] alice: kameko how are you")
    expect(m[2].content).to_contain("addressed you by name")
  end)
  it("says when nobody addressed the persona", function()
    local a = brain.new(use("persona_file"))
    a.force_llm = true
    local act = a:on_event({t = 1, type = "transcript", speaker = "a", text = "nice weather"}, 1)
    expect(act.messages[2].content).to_contain("Nobody addressed you")
  end)
  it("does not ask the LLM about its own speech, leaves or noise", function()
    local a = brain.new(use("persona_file"))
    a.force_llm = true
    expect(a:on_event({t = 1, type = "bot_said", text = "hi"}, 1)).to_be_nil()
    expect(a:on_event({t = 2, type = "leave", speaker = "bob"}, 2)).to_be_nil()
    expect(a:on_event({t = 3, type = "stt_done", speaker = "bob"}, 3)).to_be_nil()
    expect(a:on_event({t = 4, type = "transcript", speaker = "bob", text = " ... "}, 4)).to_be_nil()
    expect(a.window:len()).to_be(3) -- bot_said, leave, the empty transcript
  end)
end)

describe("own and other personas' speech", function()
  it("puts the engine's bot_speech into the window once, after audio_out_start", function()
    local a = brain.new(use("persona_file"))
    a.force_llm = true
    expect(a:on_event({t = 1, type = "audio_out_start", speaker = "Kameko", text = "Hi!"}, 1))
      .to_be_nil()
    expect(a:on_event({t = 2, type = "bot_speech", speaker = "Kameko", text = "Hi!",
                       complete = false}, 2)).to_be_nil()
    expect(a.window:len()).to_be(1)
    local e = a.window:last(1)
    expect(e.kind).to_be("self")
    expect(e.t).to_be(2)
    expect(prompt.line(e, "Kameko")).to_be("[2.0s] Kameko (you): Hi! [interrupted]")
  end)
  it("keeps another persona's speech as a line but never answers it", function()
    local a = brain.new(use("persona_file"))
    a.force_llm = false
    expect(a:on_event({t = 1, type = "bot_speech", speaker = "Rina",
                       text = "kameko what do you think"}, 1)).to_be_nil()
    local e = a.window:last(1)
    expect(e.kind).to_be("say")
    expect(e.speaker).to_be("Rina")
  end)
end)

describe("persona hooks", function()
  it("after_llm can post-process an LLM decision", function()
    local a = brain.new({name = "Ex", languages = {"en"},
      after_llm = function(d, ctx) d.response = d.response .. ", " .. ctx.speaker return d end})
    a.force_llm = true
    a:on_event({t = 1, type = "chat", speaker = "zoe", text = "ex hi"}, 5)
    local r = a:on_llm(5, {should_speak = true, response = "Hello", thought = ""})
    expect(r.decision.response).to_be("Hello, zoe")
  end)
  it("a persona without rules stays silent offline", function()
    local a = brain.new({name = "Ex", languages = {"en"}})
    a.force_llm = false
    local d = a:on_event({t = 1, type = "chat", speaker = "zoe", text = "ex hi"}, 1).decision
    expect(d.should_speak).to_be(false)
  end)
  it("brain.new raises with the broken field", function()
    expect(function() brain.new({name = "Ex"}) end).to_raise("languages")
  end)
end)
