-- persona_spec.lua - scripts/persona.lua checks
local spec = use("spec")
local describe, it, expect = spec.describe, spec.it, spec.expect
local persona = use("persona")

local function base()
  return {name = "Testa", languages = {"en"}}
end

describe("persona.check", function()
  it("fills defaults", function()
    local n = persona.check(base())
    expect(n.context_size).to_be(15)
    expect(n.max_reply_chars).to_be(400)
    expect(n.wake_words).to_equal({"testa"})
    expect(type(n.prompt)).to_be("string")
  end)
  it("normalises wake words", function()
    local p = base()
    p.wake_words = {"Hey TESTA!", "ТЕСТА"}
    expect(persona.check(p).wake_words).to_equal({"hey testa", "теста"})
  end)
  it("reports the field that is wrong", function()
    local cases = {
      {{languages = {"en"}}, "name"},
      {{name = "", languages = {"en"}}, "name"},
      {{name = "x"}, "languages"},
      {{name = "x", languages = {"english"}}, "languages"},
      {{name = "x", languages = {"en"}, wake_words = "x"}, "wake_words"},
      {{name = "x", languages = {"en"}, context_size = 0}, "context_size"},
      {{name = "x", languages = {"en"}, context_size = 1.5}, "context_size"},
      {{name = "x", languages = {"en"}, max_reply_chars = 5}, "max_reply_chars"},
      {{name = "x", languages = {"en"}, voices = {en = {engine = "say", voice = "x"}}}, "voices"},
      {{name = "x", languages = {"en"}, voices = {en = {engine = "flite"}}}, "voices"},
      {{name = "x", languages = {"en"}, voices = {en = {engine = "flite", voice = "slt",
                                                        rate = 9000}}}, "voices"},
      {{name = "x", languages = {"en"}, rules = "yes"}, "rules"},
      {{name = "x", languages = {"en"}, prompt = 5}, "prompt"},
    }
    for i, c in ipairs(cases) do
      local n, field, msg = persona.check(c[1])
      expect(n).to_be_nil()
      expect(field).to_be(c[2])
      expect(type(msg)).to_be("string")
    end
  end)
  it("speaks early by default, unless an after_llm hook may change the answer", function()
    expect(persona.check(base()).policy.early_speech).to_be(true)
    local p = base()
    p.after_llm = function(d) return d end
    expect(persona.check(p).policy.early_speech).to_be(false)
    p.policy = {early_speech = true} -- the persona takes the risk of a retraction itself
    expect(persona.check(p).policy.early_speech).to_be(true)
    local q = base()
    q.policy = {early_speech = false}
    expect(persona.check(q).policy.early_speech).to_be(false)
  end)
  it("refuses non-tables", function()
    local n, field, msg = persona.check(42)
    expect(n).to_be_nil()
    expect(msg).to_contain("must return a table")
  end)
  it("info() is plain data", function()
    local n = persona.check(use("persona_file"))
    local info = persona.info(n)
    expect(info.name).to_be("Kameko")
    expect(info.rules).to_be_nil()
    expect(#info.voices).to_be(2)
    expect(kmk.json_encode(info) ~= nil).to_be(true)
  end)
end)
