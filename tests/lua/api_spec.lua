-- api_spec.lua - the kmk table's state and reply functions, inside the real sandbox: results,
-- and bad arguments raising (runtime failures would return nil, err).
local spec = use("spec")
local describe, it, expect = spec.describe, spec.it, spec.expect

describe("kmk.memory / kmk.state", function()
  it("gives one table per user, the same on every call", function()
    local m = kmk.memory("api_al")
    m.likes = "tea"
    expect(kmk.memory("api_al").likes).to_be("tea")
    expect(kmk.memory("api_bo").likes).to_be_nil()
  end)
  it("raises for a bad user name", function()
    expect(function() kmk.memory("") end).to_raise("bad argument #1 to 'memory'")
    expect(function() kmk.memory(string.rep("x", 65)) end).to_raise("1..64 bytes")
    expect(function() kmk.memory({}) end).to_raise("string expected")
  end)
  it("keeps the persona state in one table", function()
    kmk.state().api_counter = (kmk.state().api_counter or 0) + 1
    expect(kmk.state().api_counter >= 1).to_be(true)
  end)
end)

describe("kmk.memory bound", function()
  it("refuses a new user with nil, err once 1024 are remembered; known users still work", function()
    for i = 1, 1100 do
      local m, err = kmk.memory("bulk" .. i)
      if not m then
        expect(err).to_contain("memory is full")
        break
      end
    end
    local m, err = kmk.memory("one_too_many")
    expect(m).to_be_nil()
    expect(err).to_contain("1024 users")
    expect(type(kmk.memory("api_al"))).to_be("table")
  end)
end)

describe("kmk.mute / kmk.muted", function()
  it("mutes case-insensitively and unmutes", function()
    kmk.mute("Api_Spammer")
    expect(kmk.muted("api_spammer")).to_be(true)
    kmk.mute("api_spammer", false)
    expect(kmk.muted("Api_Spammer")).to_be(false)
  end)
  it("raises on a non-boolean switch", function()
    expect(function() kmk.mute("x", "yes") end).to_raise("boolean expected")
  end)
end)

describe("kmk.cooldown", function()
  it("counts down on the timeline and clears with 0", function()
    kmk.cooldown(5)
    expect(kmk.cooldown_left() > 4.9).to_be(true)
    kmk.cooldown(0)
    expect(kmk.cooldown_left()).to_be(0)
  end)
  it("raises outside 0..3600 s", function()
    expect(function() kmk.cooldown(-1) end).to_raise("seconds 0..3600")
    expect(function() kmk.cooldown("soon") end).to_raise("number expected")
  end)
end)

describe("kmk.language", function()
  it("switches and switches back", function()
    expect(kmk.language("ru")).to_be("ru")
    expect(kmk.language()).to_be("ru")
    expect(kmk.language(false)).to_be_nil()
  end)
  it("raises for something that is not a language code", function()
    expect(function() kmk.language("english") end).to_raise("language code")
  end)
end)

describe("kmk.say / kmk.silent", function()
  it("builds a speaking decision with overrides", function()
    local d = kmk.say("hello", {lang = "en", voice = "kal16", rate = 200, pitch = 40, yield = true})
    expect(d.should_speak).to_be(true)
    expect(d.response).to_be("hello")
    expect(d.lang).to_be("en")
    expect(d.voice.voice).to_be("kal16")
    expect(d.voice.rate).to_be(200)
    expect(d.yield).to_be(true)
  end)
  it("builds a silent decision", function()
    local d = kmk.silent("nothing to add")
    expect(d.should_speak).to_be(false)
    expect(d.thought).to_be("nothing to add")
  end)
  it("raises on bad arguments", function()
    expect(function() kmk.say("") end).to_raise("non-empty text")
    expect(function() kmk.say("x", {lang = "English"}) end).to_raise("opts.lang")
    expect(function() kmk.say("x", {rate = 5}) end).to_raise("opts.rate")
    expect(function() kmk.say("x", {voice = 7}) end).to_raise("opts.voice")
    expect(function() kmk.say("x", "loud") end).to_raise("table expected")
  end)
end)

describe("kmk and its stubs", function()
  it("exposes exactly the functions mirrored in scripts/meta/kmk.lua", function()
    local want = {"log", "now", "date", "json_encode", "json_decode", "lower", "llm_available",
                  "memory", "state", "mute", "muted", "cooldown", "cooldown_left", "language",
                  "say", "silent"}
    local n = 0
    for k, v in pairs(kmk) do
      n = n + 1
      expect(type(v)).to_be("function")
    end
    for _, k in ipairs(want) do expect(type(kmk[k])).to_be("function") end
    expect(n).to_be(#want)
  end)
end)
