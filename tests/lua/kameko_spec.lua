-- kameko_spec.lua - personas/kameko.lua offline rules through the real brain flow
local spec = use("spec")
local describe, it, expect = spec.describe, spec.it, spec.expect
local brain = use("brain")
local text = use("text")

local function agent()
  local a = brain.new(use("persona_file"))
  a.force_llm = false
  return a
end

local t = 0
local function say(a, speaker, s)
  t = t + 1
  local act = a:on_event({t = t, type = "transcript", speaker = speaker, text = s}, t)
  return act and act.decision
end

local function speaks(d, lang)
  expect(d ~= nil).to_be(true)
  expect(d.should_speak).to_be(true)
  expect(d.lang).to_be(lang)
  expect(text.has_cyrillic(d.response)).to_be(lang == "ru")
  return d.response
end

describe("kameko addressed in English", function()
  local cases = {
    {"kameko", {"listening", "I'm here", "Yes"}},
    {"hey kameko", {"Hi", "Hello", "Hey"}},
    {"hi kameko", {"Hi", "Hello", "Hey"}},
    {"hey kameko how are you", {"great", "good", "How are you"}},
    {"kameko how is it going", {"great", "good", "How are you"}},
    {"kameko what's your name", {"Kameko"}},
    {"kameko who are you", {"Kameko"}},
    {"kameko what can you do", {"name"}},
    {"thanks kameko", {"welcome", "Anytime", "help"}},
    {"bye kameko", {"alice"}},
    {"kameko good night", {"alice"}},
    {"kameko what time is it", {":"}},
    {"kameko what is the date today", {"November"}},
    {"kameko what's the capital of france", {"capital of france"}},
  }
  for _, c in ipairs(cases) do
    it("answers '" .. c[1] .. "'", function()
      local r = speaks(say(agent(), "alice", c[1]), "en")
      local hit = false
      for _, want in ipairs(c[2]) do hit = hit or r:find(want, 1, true) ~= nil end
      if not hit then error("unexpected reply: " .. r) end
    end)
  end
  it("addresses the speaker", function()
    local d = say(agent(), "alice", "kameko hello")
    expect(d.addressed).to_be("alice")
  end)
  it("fills the time from kmk.date (14:05 UTC at t = 0 in the runner)", function()
    expect(say(agent(), "bob", "kameko what time is it")).to_be_truthy()
    local r = say(agent(), "bob", "kameko what time is it").response
    expect(r).to_match("14:0%d")
  end)
  it("matches the wake word inside punctuated chat text", function()
    speaks(say(agent(), "alice", "Kameko, what's your name?"), "en")
  end)
end)

describe("kameko addressed in Russian", function()
  local cases = {
    {"камеко", {"слушаю", "здесь", "Да"}},
    {"привет камеко", {"Привет", "Здравствуй"}},
    {"Камеко, как дела?", {"отлично", "Хорошо", "хорошо"}},
    {"камеко как тебя зовут", {"Камеко"}},
    {"камеко кто ты", {"Камеко"}},
    {"камеко что ты умеешь", {"имени"}},
    {"спасибо камеко", {"Пожалуйста", "рада", "Не за что"}},
    {"пока камеко", {"Дима"}},
    {"камеко который час", {"Сейчас"}},
    {"камеко какое сегодня число", {"ноября"}},
    {"камеко расскажи про погоду в москве", {"погоду в москве"}},
    {"КАМЕКО, ПРИВЕТ!", {"Привет", "Здравствуй"}},
  }
  for _, c in ipairs(cases) do
    it("answers '" .. c[1] .. "'", function()
      local r = speaks(say(agent(), "Дима", c[1]), "ru")
      local hit = false
      for _, want in ipairs(c[2]) do hit = hit or r:find(want, 1, true) ~= nil end
      if not hit then error("unexpected reply: " .. r) end
    end)
  end
end)

describe("kameko stays silent", function()
  it("while people talk to each other", function()
    local a = agent()
    for _, s in ipairs({"did you see the match", "yes it was great", "how are you doing",
                        "привет как дела", "thanks see you tomorrow", "what time is it"}) do
      local d = say(a, "alice", s)
      expect(d.should_speak).to_be(false)
      expect(d.thought).to_contain("not addressed")
    end
  end)
  it("on her own speech and on leaves", function()
    local a = agent()
    expect(a:on_event({t = 1, type = "audio_out_start", speaker = "Kameko",
                       text = "kameko hello"}, 1)).to_be_nil()
    expect(a:on_event({t = 2, type = "transcript", speaker = "Kameko", text = "kameko hi"}, 2))
      .to_be_nil()
    expect(a:on_event({t = 3, type = "leave", speaker = "bob"}, 3)).to_be_nil()
  end)
  it("does not take a longer word for her name", function()
    local d = say(agent(), "alice", "kamekos are nice")
    expect(d.should_speak).to_be(false)
  end)
end)

describe("kameko greets", function()
  it("people who join, in the conversation's language", function()
    local a = agent()
    say(a, "alice", "hello everyone")
    local d = a:on_event({t = 50, type = "join", speaker = "Bob"}, 50).decision
    expect(speaks(d, "en")).to_contain("Bob")
    local b = agent()
    say(b, "Дима", "всем привет")
    d = b:on_event({t = 51, type = "join", speaker = "Оля"}, 51).decision
    expect(speaks(d, "ru")).to_contain("Оля")
  end)
  it("in her first language when nobody has spoken yet", function()
    local d = agent():on_event({t = 1, type = "join", speaker = "Bob"}, 1).decision
    speaks(d, "en")
  end)
end)

describe("kameko follow-ups", function()
  it("answers a short thanks right after she spoke", function()
    local a = agent()
    say(a, "alice", "kameko what time is it")
    a:on_event({t = t + 0.5, type = "bot_said", speaker = "Kameko", text = "It's 14:05."}, 0)
    speaks(say(a, "alice", "thanks"), "en")
  end)
  it("but not a thanks between people long after", function()
    local a = agent()
    a:on_event({t = 1, type = "bot_said", speaker = "Kameko", text = "Hi"}, 0)
    t = 100
    expect(say(a, "alice", "thanks").should_speak).to_be(false)
  end)
end)

describe("kameko variety", function()
  it("is deterministic per input", function()
    local r1 = say(agent(), "alice", "kameko how are you").response
    local r2 = say(agent(), "alice", "kameko how are you").response
    expect(r1).to_be(r2)
  end)
  it("varies across inputs", function()
    local seen, n = {}, 0
    for _, who in ipairs({"alice", "bob", "carol", "dave", "erin", "frank", "gina", "hank"}) do
      local r = say(agent(), who, "kameko how are you").response
      if not seen[r] then n = n + 1 end
      seen[r] = true
    end
    expect(n >= 2).to_be(true)
  end)
  it("keeps replies within max_reply_chars", function()
    local long = "kameko " .. string.rep("tell me about the history of everything ", 30)
    local d = say(agent(), "alice", long)
    expect(utf8.len(d.response) <= 300).to_be(true)
  end)
end)

describe("kameko with the LLM failing", function()
  it("falls back to the offline rules", function()
    local a = agent()
    a.force_llm = true
    local act = a:on_event({t = 1, type = "transcript", speaker = "alice", text = "kameko hi"}, 7)
    expect(act.kind).to_be("llm")
    local r = a:on_llm(7, nil, "timeout", true)
    expect(r.decision.should_speak).to_be(true)
    expect(r.decision.thought).to_contain("timeout")
  end)
  it("stays silent on an unusable answer", function()
    local a = agent()
    a.force_llm = true
    a:on_event({t = 1, type = "transcript", speaker = "alice", text = "kameko hi"}, 8)
    local r = a:on_llm(8, nil, "no JSON", false)
    expect(r.decision.should_speak).to_be(false)
  end)
  it("rules out early speech of an unsolicited answer while cooling down", function()
    local a = agent()
    a.force_llm = true
    kmk.cooldown(0)
    local act = a:on_event({t = 1, type = "transcript", speaker = "alice", text = "nice weather today"}, 11)
    expect(act.kind).to_be("llm")
    expect(act.early).to_be(true)
    kmk.cooldown(30)
    act = a:on_event({t = 2, type = "transcript", speaker = "alice", text = "nice weather today"}, 12)
    expect(act.early).to_be(false) -- apply() would silence it after its first sentence was heard
    act = a:on_event({t = 3, type = "transcript", speaker = "alice", text = "kameko, how are you"}, 13)
    expect(act.early).to_be(true) -- called by name: the cooldown does not hold the answer back
    kmk.cooldown(0)
  end)
  it("fills the addressed speaker into an LLM decision", function()
    local a = agent()
    a.force_llm = true
    a:on_event({t = 1, type = "transcript", speaker = "alice", text = "kameko hi"}, 9)
    local r = a:on_llm(9, {thought = "", should_speak = true, response = "Hi!", lang = "en"})
    expect(r.decision.addressed).to_be("alice")
  end)
  it("keeps at most a few pending requests", function()
    local a = agent()
    a.force_llm = true
    for i = 1, 20 do
      a:on_event({t = i, type = "transcript", speaker = "alice", text = "hi " .. i}, i)
    end
    local n = 0
    for _ in pairs(a.pending) do n = n + 1 end
    expect(n).to_be(brain.MAX_PENDING)
  end)
end)

describe("kameko greetings are not spammy", function()
  it("greets the first of a burst of joins only", function()
    local a = agent()
    local d1 = a:on_event({t = 10, type = "join", speaker = "A"}, 1).decision
    local d2 = a:on_event({t = 11, type = "join", speaker = "B"}, 2).decision
    local d3 = a:on_event({t = 30, type = "join", speaker = "C"}, 3).decision
    expect(d1.should_speak).to_be(true)
    expect(d2.should_speak).to_be(false)
    expect(d2.thought).to_contain("burst")
    expect(d3.should_speak).to_be(true)
  end)
  it("does not greet someone who dropped and came back within a minute", function()
    local a = agent()
    a:on_event({t = 10, type = "join", speaker = "A"}, 1)
    a:on_event({t = 40, type = "leave", speaker = "A"}, 2)
    local d = a:on_event({t = 50, type = "join", speaker = "A"}, 3).decision
    expect(d.should_speak).to_be(false)
    expect(d.thought).to_contain("rejoined")
    a:on_event({t = 60, type = "leave", speaker = "A"}, 4)
    d = a:on_event({t = 200, type = "join", speaker = "A"}, 5).decision
    expect(d.should_speak).to_be(true)
  end)
end)
