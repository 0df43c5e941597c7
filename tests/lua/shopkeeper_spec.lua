-- shopkeeper_spec.lua - personas/shopkeeper.lua (Marta) through the real brain flow, offline.
-- The store (kmk.state / kmk.memory) is shared by the tests of this file (one state), so each test
-- uses its own customer and reads prices relative to the current stock.
local spec = use("spec")
local describe, it, expect = spec.describe, spec.it, spec.expect
local brain = use("brain")

local function agent()
  local a = brain.new(use("persona_file"))
  a.force_llm = false
  return a
end

local t = 0
local function say(a, speaker, s)
  t = t + 1
  local act = a:on_event({t = t, type = "transcript", speaker = speaker, text = s}, t)
  local d = act and act.decision
  if d and d.should_speak then -- the engine reports the spoken reply back, as bot_speech
    t = t + 1
    a:on_event({t = t, type = "bot_speech", speaker = "Marta", text = d.response}, t)
  end
  return d and d.should_speak and d.response or nil, d
end

local function stock(item) return kmk.state().stock[item] end

describe("Marta the shopkeeper", function()
  it("greets a customer who joins, and welcomes them back later", function()
    local a = agent()
    t = t + 1
    local act = a:on_event({t = t, type = "join", speaker = "gwen"}, t)
    expect(act.decision.response).to_contain("Welcome to Marta's shop, gwen")
    t = t + 100
    act = a:on_event({t = t, type = "join", speaker = "gwen"}, t)
    expect(act.decision.response).to_contain("Welcome back, gwen")
  end)

  it("lists her stock with prices when asked", function()
    local r = say(agent(), "al", "Marta, what do you sell?")
    expect(r).to_contain("swords at 50 gold")
    expect(r).to_contain("potions at 10 gold")
  end)

  it("stays out of conversations between players", function()
    local a = agent()
    local r = say(a, "al", "did you see the dragon last night")
    expect(r).to_be_nil()
  end)

  it("quotes a price and remembers which item the customer asked about", function()
    local a = agent()
    local r = say(a, "bo", "marta how much is the shield")
    expect(r).to_contain("The shield is " .. stock("shield").price .. " gold")
    expect(kmk.memory("bo").item).to_be("shield")
  end)

  it("haggles step by step, never under the floor, for that customer only", function()
    local a = agent()
    local list = stock("sword").price
    local r = say(a, "cy", "marta the sword is too expensive")
    local first = kmk.memory("cy").offers.sword
    expect(first < list).to_be(true)
    expect(r).to_contain(tostring(first) .. " gold for the sword")
    -- a follow-up (no name) with a low number offer
    r = say(a, "cy", "I'll give you twenty")
    expect(r).to_contain("You'll ruin me")
    local second = kmk.memory("cy").offers.sword
    expect(second <= first).to_be(true)
    expect(second >= stock("sword").floor).to_be(true)
    -- another customer still pays the list price
    r = say(a, "dee", "marta how much is the sword")
    expect(r).to_contain(tostring(list))
  end)

  it("accepts an offer at or above the floor", function()
    local a = agent()
    local r = say(a, "ed", "marta I offer 36 for the sword")
    expect(r).to_contain("36 gold for the sword")
    expect(kmk.memory("ed").offers.sword).to_be(36)
  end)

  it("names a final price after too much haggling", function()
    local a = agent()
    local r
    for _ = 1, 5 do r = say(a, "fi", "marta cheaper please, the potion") end
    expect(r).to_contain("final price")
    expect(kmk.memory("fi").offers.potion).to_be(stock("potion").floor)
  end)

  it("sells at the agreed price; stock, gold and the list price move", function()
    local a = agent()
    say(a, "ed", "marta I offer 36 for the sword")
    local before = {qty = stock("sword").qty, price = stock("sword").price, gold = kmk.state().gold}
    local r = say(a, "ed", "marta I'll buy the sword")
    expect(r).to_contain("One sword for 36 gold")
    expect(stock("sword").qty).to_be(before.qty - 1)
    expect(kmk.state().gold).to_be(before.gold + 36)
    expect(stock("sword").price > before.price).to_be(true) -- demand raised the list price
    expect(kmk.memory("ed").bought.sword).to_be(1)
  end)

  it("says when an item is sold out", function()
    local a = agent()
    say(a, "gus", "marta I'll buy the lantern")
    local r = say(a, "hal", "marta I'll buy the lantern")
    expect(r).to_contain("out of lanterns")
  end)

  it("reports her takings", function()
    local r = say(agent(), "al", "marta how much gold have you made")
    expect(r).to_contain("gold")
  end)

  it("keeps the shop's state when the persona is rebuilt (as on a reload)", function()
    local gold = kmk.state().gold
    local a = agent() -- seeding fills only missing keys
    expect(kmk.state().gold).to_be(gold)
    expect(say(a, "al", "marta what do you sell")).not_to_contain("lantern")
  end)
end)
