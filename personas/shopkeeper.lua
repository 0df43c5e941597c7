-- shopkeeper.lua - Marta, a game NPC who runs a small shop. Fully offline (no LLM needed): her
-- stock, prices and gold live in kmk.state() and what she knows about each customer (their last
-- item, the price she agreed with them, how often they haggled, what they bought) in
-- kmk.memory(name), so both survive a hot reload of this file. Prices move: every sale raises an
-- item's list price by 10 % (demand); haggling lowers the price for that customer step by step,
-- never under the item's floor, and after three rounds Marta names her final price.
-- Talk to her by name ("Marta, what do you sell?", "Marta, how much is the sword?", "I'll give you
-- thirty", "Marta, I'll buy the sword"); follow-ups within 20 s need no name.

local ITEMS = {"sword", "shield", "potion", "rope", "lantern"}
local PLURAL = {sword = "swords", shield = "shields", potion = "potions", rope = "ropes",
                lantern = "lanterns"}

local NUMBERS = {
  zero = 0, one = 1, two = 2, three = 3, four = 4, five = 5, six = 6, seven = 7, eight = 8,
  nine = 9, ten = 10, eleven = 11, twelve = 12, thirteen = 13, fourteen = 14, fifteen = 15,
  sixteen = 16, seventeen = 17, eighteen = 18, nineteen = 19, twenty = 20, thirty = 30,
  forty = 40, fifty = 50, sixty = 60, seventy = 70, eighty = 80, ninety = 90, hundred = 100,
}

--- The first amount in the text: digits ("35") or words ("thirty five", "a hundred").
local function amount(norm)
  local d = norm:match("(%d+)")
  if d then return math.tointeger(tonumber(d)) end
  local total, seen = 0, false
  for w in norm:gmatch("%S+") do
    local n = NUMBERS[w]
    if n then
      if n == 100 then total = (total == 0 and 1 or total) * 100 else total = total + n end
      seen = true
    elseif seen then
      break
    end
  end
  return seen and total or nil
end

local function item_in(ctx)
  for _, it in ipairs(ITEMS) do
    if ctx.has(it, PLURAL[it]) then return it end
  end
  return nil
end

--- The price this customer pays for an item right now.
local function price_for(ctx, item)
  local m, s = ctx.memory or {}, ctx.state.stock[item]
  local offer = m.offers and m.offers[item]
  if offer and offer < s.price then return offer end
  return s.price
end

local function list_stock(ctx)
  local parts = {}
  for _, it in ipairs(ITEMS) do
    local s = ctx.state.stock[it]
    if s and s.qty > 0 then
      parts[#parts + 1] = (s.qty == 1 and "one " .. it or s.qty .. " " .. PLURAL[it])
        .. " at " .. price_for(ctx, it) .. " gold"
    end
  end
  if #parts == 0 then return "I'm sold out, come back tomorrow." end
  return "I have " .. table.concat(parts, ", ") .. "."
end

local function remember_item(ctx, item)
  if ctx.memory and item then ctx.memory.item = item end
end

local function buy(ctx, item)
  local s = ctx.state.stock[item]
  if s.qty == 0 then return "Sorry " .. ctx.speaker .. ", I'm out of " .. PLURAL[item] .. "." end
  local p = price_for(ctx, item)
  s.qty = s.qty - 1
  ctx.state.gold = ctx.state.gold + p
  ctx.state.sales = ctx.state.sales + 1
  s.price = math.floor(s.price * 1.1 + 0.5) -- demand: the list price rises
  local m = ctx.memory
  if m then
    m.bought = m.bought or {}
    m.bought[item] = (m.bought[item] or 0) + 1
    m.spent = (m.spent or 0) + p
    if m.offers then m.offers[item] = nil end
    m.haggles = 0
  end
  return "Deal! One " .. item .. " for " .. p .. " gold. Pleasure doing business, "
    .. ctx.speaker .. "."
end

local function haggle(ctx, item, offered)
  local s = ctx.state.stock[item]
  local m = ctx.memory or {}
  m.offers = m.offers or {}
  m.haggles = (m.haggles or 0) + 1
  local current = price_for(ctx, item)
  if offered and offered >= current then
    return "You drive a soft bargain! " .. current .. " is the price, no need to pay more."
  end
  if offered and offered >= s.floor then
    m.offers[item] = offered
    return "Hmm. " .. offered .. " gold for the " .. item .. "? Fine, it's yours at that price."
  end
  if m.haggles > 3 then
    m.offers[item] = s.floor
    return "Enough haggling! My final price for the " .. item .. " is " .. s.floor .. " gold."
  end
  local counter = math.max(s.floor, current - math.max(1, (current - s.floor) // 2))
  m.offers[item] = counter
  if offered then
    return offered .. "? You'll ruin me! I can do " .. counter .. " gold for the " .. item .. "."
  end
  return "For you, " .. ctx.speaker .. ", " .. counter .. " gold for the " .. item .. "."
end

local function rules(ctx)
  local m = ctx.memory
  if ctx.kind == "join" then
    if m then m.visits = (m.visits or 0) + 1 end
    if m and m.visits > 1 then
      return "Welcome back, " .. ctx.speaker .. "! Still " .. ctx.state.gold .. " gold in my box, "
        .. "and fresh stock on the shelves."
    end
    return "Welcome to Marta's shop, " .. ctx.speaker .. "! Swords, shields, potions, rope and lanterns."
  end
  local talking_to_me = ctx.addressed or ctx.follow_up
  if not talking_to_me then return nil end
  local item = item_in(ctx) or (m and m.item)
  local offered = amount(ctx.rest)
  if ctx.has("buy", "take it", "ill take", "i will take", "deal", "sold") then
    if not item then return "What would you like to buy? " .. list_stock(ctx) end
    remember_item(ctx, item)
    return buy(ctx, item)
  end
  if ctx.has("too expensive", "too much", "cheaper", "discount", "lower", "less", "give you",
             "offer", "how about") or (offered and item) then
    if not item then return "Haggle over what? " .. list_stock(ctx) end
    remember_item(ctx, item)
    return haggle(ctx, item, offered)
  end
  if ctx.has("how much", "price", "cost", "costs") then
    if not item then return list_stock(ctx) end
    remember_item(ctx, item)
    local s = ctx.state.stock[item]
    if s.qty == 0 then return "The " .. item .. " is sold out, I'm afraid." end
    return "The " .. item .. " is " .. price_for(ctx, item) .. " gold. " ..
      (s.qty == 1 and "Last one!" or s.qty .. " left.")
  end
  if ctx.has("sell", "have", "stock", "wares", "inventory", "buy something", "shop") then
    return list_stock(ctx)
  end
  if ctx.has("gold", "rich", "earn", "money") then
    return "I've made " .. ctx.state.sales .. " sales today and have " .. ctx.state.gold .. " gold."
  end
  if ctx.has("bye", "goodbye", "see you", "farewell") then
    return "Come back soon, " .. ctx.speaker .. "!"
  end
  if ctx.addressed then
    if m and m.spent then
      return "Good to see you again, " .. ctx.speaker .. ". What will it be today?"
    end
    return "Yes, " .. ctx.speaker .. "? Ask me what I sell, or name your price."
  end
  return nil
end

return {
  name = "Marta",
  description = "a shopkeeper NPC: inventory, prices that move with sales and haggling",
  languages = {"en"},
  wake_words = {"marta", "shopkeeper", "merchant"},
  voices = {en = {engine = "flite", voice = "slt", rate = 160, pitch = 55}},
  context_size = 15,
  max_reply_chars = 300,
  policy = {cooldown = 0, may_interrupt = false, yield = false},
  state = {
    gold = 100,
    sales = 0,
    stock = {
      sword = {price = 50, floor = 35, qty = 2},
      shield = {price = 40, floor = 28, qty = 3},
      potion = {price = 10, floor = 6, qty = 10},
      rope = {price = 5, floor = 3, qty = 5},
      lantern = {price = 15, floor = 10, qty = 1},
    },
  },
  prompt = [[
You are {name}, a shopkeeper in a fantasy village, talking with players in a voice chat. You sell
swords, shields, potions, rope and lanterns. You enjoy haggling but never sell below cost. Answer
when addressed by name ({wake_words}) or in an ongoing deal; stay silent otherwise. Keep replies
short (at most {max_reply_chars} characters), in character, no markdown.]],
  rules = rules,
}
