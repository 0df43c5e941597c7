---@meta
-- kmk.lua - editor stubs (LuaLS annotations) for what scripts and personas see in the sandbox.
-- Mirrors engine/lua/api.c (the kmk table) and engine/lua/vm.c (the allow-list). Never loaded by
-- the engine. Keep in sync with the luaL_Reg list in api.c.
--
-- Globals: assert error ipairs next pairs pcall xpcall rawequal rawget rawlen rawset select
-- getmetatable setmetatable (no __gc) tonumber tostring type print (-> engine log) _VERSION _G
-- load(text, name, "t", env) (text only, env required) collectgarbage("count") use(name)
-- Libraries (each script gets its own copies): string (no dump), table, math, utf8,
-- cjson (= cjson.safe), kmk. Reading an unknown global raises. No io/os/package/debug/require.
-- Every call from the engine has a wall-time budget (default 5 ms) and the state a memory cap
-- (default 32 MiB); a killed call cannot be caught by pcall.

---@class kmk
kmk = {}

---Writes a line to the engine log under the tag "persona". msg is capped at 1000 bytes.
---@param level "error"|"warn"|"info"|"debug"
---@param msg string
function kmk.log(level, msg) end

---Seconds on the conversation timeline (the `t` of events), as set by the engine.
---@return number
function kmk.now() end

---Local wall-clock date and time at kmk.now().
---@return {year: integer, month: integer, day: integer, hour: integer, min: integer, sec: integer, wday: integer, yday: integer}|nil, string?
function kmk.date() end

---JSON text of a value (cjson.safe).
---@param v any
---@return string|nil json, string? err
function kmk.json_encode(v) end

---Value of a JSON text (cjson.safe; JSON null is cjson.null).
---@param s string
---@return any|nil value, string? err
function kmk.json_decode(s) end

---UTF-8 lowercase for ASCII, Latin-1 letters and Cyrillic ("Камеко" -> "камеко").
---@param s string
---@return string
function kmk.lower(s) end

---Whether an LLM provider is configured (the brain then asks it instead of the offline rules).
---@return boolean
function kmk.llm_available() end

-- Conversation state. Lives in the engine's store and is handed to the new state on a hot reload
-- (a reload never loses it); bounded by the persona's memory cap.

---Facts about one speaker (a table the persona fills freely), created empty on first use.
---Raises for a name that is not a string of 1..64 bytes; returns nil, err when 1024 users are
---already remembered (a new one is refused, known ones keep working).
---@param user string
---@return table|nil memory, string? err
function kmk.memory(user) end

---The persona's own state (e.g. a shop's stock), seeded from the persona's `state` field: keys
---the running state lacks are added, running values are never reset by a reload.
---@return table
function kmk.state() end

---Ignore a user (their words stay in the window but are never answered), or listen again.
---@param user string
---@param on boolean? default true
function kmk.mute(user, on) end

---@param user string
---@return boolean
function kmk.muted(user) end

---Hold back unsolicited replies for `seconds` (timeline); being called by name always answers.
---0 clears. policy.cooldown applies the same after every reply.
---@param seconds number 0..3600
function kmk.cooldown(seconds) end

---Seconds left of the cooldown (0 = none).
---@return number
function kmk.cooldown_left() end

---Switch the language for greetings, ticks and replies without a language of their own; false =
---follow the speaker again. With no argument just returns the current switch.
---@param code string|false|nil e.g. "ru"
---@return string|nil
function kmk.language(code) end

---A decision that speaks `text`. Raises on bad arguments (empty text, bad lang, rate/pitch out
---of range). Return it from rules/on_tick/on_event.
---@param text string 1..4000 bytes
---@param opts {lang: string?, voice: string?, rate: integer?, pitch: integer?, yield: boolean?, thought: string?}?
---@return kmk.Decision
function kmk.say(text, opts) end

---A decision that stays silent.
---@param thought string?
---@return kmk.Decision
function kmk.silent(thought) end

---A module loaded by the engine ("text", "window", "prompt", "persona", "brain",
---"persona_file"). Scripts cannot load files themselves.
---@param name string
---@return table
function use(name) end

-- ---------------------------------------------------------------------------------------------
-- Persona files (personas/NAME.lua) return a table; see scripts/persona.lua for every field.

---@class kmk.Voice
---@field engine "espeak"|"flite"|"edge" "edge": an Edge neural voice name ("en-US-AriaNeural"); offline fallback flite slt (en) or espeak <lang>
---@field voice string
---@field rate integer?   words per minute, 50..500
---@field pitch integer?  0..100

---@class kmk.Persona
---@field name string
---@field languages string[]            first = default, e.g. {"ru", "en"}
---@field wake_words string[]?          default {name}
---@field voices table<string, kmk.Voice>?
---@field context_size integer?         window size, default 15
---@field max_reply_chars integer?      default 400
---@field prompt string?                system prompt template: {name} {languages} {wake_words} {max_reply_chars}
---@field rules (fun(ctx: kmk.Ctx): kmk.Decision|string|nil)?   offline decision
---@field after_llm (fun(d: kmk.Decision, ctx: kmk.Ctx): kmk.Decision?)?
---@field policy {cooldown: number?, may_interrupt: boolean?, yield: boolean?}?
---@field moderation {banned_words: string[]?, max_talk_s: number?}?   data for the hooks
---@field state table?                  initial kmk.state()
---@field on_tick (fun(ctx: kmk.Ctx): kmk.Decision|string|nil)?   once a second (timeline)
---@field on_event (fun(ev: table, ctx: kmk.Ctx): kmk.Decision|string|nil)?  speech_start, speech_end (duration_s), interrupted (heard), ...

---What rules(ctx) gets for a transcript/chat line or a join.
---@class kmk.Ctx
---@field kind "say"|"join"|"tick"|string   (stage events: their type)
---@field speaker string
---@field text string             as heard/typed
---@field norm string             lowercased, no punctuation, ё -> е
---@field rest string             norm without the wake words
---@field addressed boolean       a wake word was said
---@field wake_word string?
---@field lang string             language to answer in ("ru" for Cyrillic text)
---@field follow_up boolean       the persona spoke just before (within 20 s)
---@field t number              the event's time on the timeline
---@field now number            kmk.now()
---@field window table[]          the context window, oldest first: {t, kind, speaker, text, lang}
---@field persona kmk.Persona
---@field seed string
---@field pick fun(list: string[]): string        deterministic choice for this input
---@field has fun(...: string|string[]): boolean  any phrase present (word boundaries)
---@field memory table?           kmk.memory(speaker)
---@field user fun(name: string): table?   kmk.memory(name)
---@field state table             kmk.state()
---@field muted fun(name: string): boolean
---@field cooldown number         kmk.cooldown_left()
---@field event table?            on_tick/on_event: the event

---@class kmk.Decision
---@field thought string?
---@field should_speak boolean
---@field response string?
---@field lang string?            default ctx.lang
---@field addressed string?       default the speaker
---@field yield boolean?          speak only if no other persona wants the floor (policy.yield)
---@field voice {voice: string?, rate: integer?, pitch: integer?}?   overrides for this reply
---@field cooldown number?        seconds of cooldown after this reply (policy.cooldown)
---@field mute string|string[]?   users to ignore from now on
---@field unmute string|string[]?
---@field language string|false?  switch language (false = follow the speaker)
