-- prompt.lua - builds the LLM request from the context window: the system prompt (the persona's
-- template + the JSON contract) and one user message holding the window as lines, oldest first.
-- Runs inside the sandbox (module "prompt"); pure functions.

local M = {}

M.CONTRACT = [[
Answer with ONE JSON object and nothing else:
{"thought": "<one short private sentence: what is happening and whether you should talk>",
 "should_speak": true or false,
 "response": "<what you say out loud, or an empty string when should_speak is false>"}]]

local function fill(template, vars)
  return (template:gsub("{([%w_]+)}", function(k)
    local v = vars[k]
    if v == nil then return nil end
    return tostring(v)
  end))
end

--- One line per window entry, e.g. "[12.3s] Alice: hello" / "[13.0s] (Bob joined)".
function M.line(e, persona_name)
  local t = string.format("[%.1fs]", tonumber(e.t) or 0)
  if e.kind == "join" then
    return t .. " (" .. e.speaker .. " joined the voice chat)"
  elseif e.kind == "leave" then
    return t .. " (" .. e.speaker .. " left the voice chat)"
  elseif e.kind == "self" then
    return t .. " " .. persona_name .. " (you): " .. (e.text or "")
      .. (e.interrupted and " [interrupted]" or "")
  end
  return t .. " " .. e.speaker .. ": " .. (e.text or "")
end

--- messages(persona, entries, ctx) -> OpenAI-style messages array
function M.messages(persona, entries, ctx)
  local langs = table.concat(persona.languages, ", ")
  local system = fill(persona.prompt, {
    name = persona.name,
    languages = langs,
    wake_words = table.concat(persona.wake_words, ", "),
    max_reply_chars = persona.max_reply_chars,
  }) .. "\n\n" .. M.CONTRACT
  local lines = {}
  for _, e in ipairs(entries) do lines[#lines + 1] = M.line(e, persona.name) end
  local hint
  if ctx.kind == "join" then
    hint = ctx.speaker .. " just joined. Greet them briefly if it fits."
  elseif ctx.addressed then
    hint = ctx.speaker .. " addressed you by name; answer in " ..
      (ctx.lang == "ru" and "Russian" or "English") .. "."
  else
    hint = "Nobody addressed you by name; speak only if you are clearly expected to."
  end
  local user = "Recent conversation (oldest first, the last line is new):\n" ..
    table.concat(lines, "\n") .. "\n\n" .. hint
  return {
    {role = "system", content = system},
    {role = "user", content = user},
  }
end

return M
