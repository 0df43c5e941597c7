#!/usr/bin/env node
// Loopback stand-ins for the cloud providers Kameko talks to, faithful to their wire protocols
// (shared/PROTOCOLS.md) and able to reproduce their failure modes on demand:
//   - Groq-like STT:        POST <base>/audio/transcriptions (multipart, verbose_json)
//   - OpenRouter-like LLM:  POST <base>/chat/completions (JSON or SSE stream)
//   - Edge-like TTS:        WebSocket <any path>?TrustedClientToken=..&Sec-MS-GEC=..
//   - plumbing for HTTP client tests: /echo, /bytes, /slow, /drip, /stall, /status, /truncate
//
// Failure modes are chosen per request by a path prefix "/m/<spec>/...". <spec> is a comma list
// of modes; the Nth request carrying the same spec uses the Nth mode (the last one repeats), so
// "/m/t1:429,ok/" answers 429 once and then succeeds ("t1:" is a free label that keeps tests
// apart). Modes per service are listed in MODES below.
//
// Control: GET /control/last?service=stt|llm|tts  -> the last request seen (fields, headers)
//          GET /control/count?spec=<spec>        -> how many requests used that spec
// Options: --port N (0 = any; the chosen port is printed as "PORT <n>"), --host 127.0.0.1,
//          --stt-ms, --llm-first-ms, --llm-tps, --tts-first-ms (injected latencies for benches),
//          --clock-offset S (the TTS server's clock runs S seconds ahead),
//          --tls-cert F --tls-key F (HTTPS/WSS with that certificate),
//          --stt-script F: JSON array of transcripts [{text, language?, no_speech_prob?,
//            avg_logprob?, compression_ratio?}], used in order by requests without a /m/ mode
//            (the last one repeats) - lets an end-to-end test script what each utterance "said",
//          --llm-script F: JSON array [{match?, reply}]: the first entry whose `match` occurs in
//            the request's messages (or that has no match) gives the reply (an object is sent as
//            its JSON text).
// Stats: GET /control/stats -> {stt, llm, tts: {requests, with_mode}} (with_mode: requests answered
//        in an injected mode other than ok) for end-to-end assertions.
'use strict';
const http = require('http');
const https = require('https');
const crypto = require('crypto');
const fs = require('fs');
const vm = require('vm');
const { WebSocketServer } = require('ws');

const MODES = {
  stt: 'ok ru hallu_en hallu_ru lowconf repeat silence 401 403 429 429reset 500 503 stall malformed slow',
  llm: 'ok crlf json 401 402 403 429 429long 500 503 midstream_or midstream_lone stall truncate ' +
       'nodone malformed slowfirst noformat',
  tts: 'ok skew 403 503 closenoaudio stall badframe',
};

const args = {};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a.startsWith('--')) args[a.slice(2)] = process.argv[i + 1], i++;
}
const PORT = Number(args.port || 0);
const HOST = args.host || '127.0.0.1';
const LAT = {
  stt: Number(args['stt-ms'] || 0),
  llmFirst: Number(args['llm-first-ms'] || 0),
  llmTps: Number(args['llm-tps'] || 0),
  ttsFirst: Number(args['tts-first-ms'] || 0),
};
const CLOCK_OFFSET = Number(args['clock-offset'] || 0);
const STT_SCRIPT = args['stt-script'] ? JSON.parse(fs.readFileSync(args['stt-script'], 'utf8')) : null;
const LLM_SCRIPT = args['llm-script'] ? JSON.parse(fs.readFileSync(args['llm-script'], 'utf8')) : null;
let sttScriptPos = 0;
const stats = { stt: { requests: 0, with_mode: 0 }, llm: { requests: 0, with_mode: 0 },
  tts: { requests: 0, with_mode: 0 } };
const TRUSTED = '6A5AA1D4EAFF4E9FB37E23D68491D6F4';

// ---- helpers ----------------------------------------------------------------------------------
const specCounts = new Map();
const last = { stt: null, llm: null, tts: null };

function parseMode(url) {
  const m = /^\/m\/([^/]+)(\/.*)?$/.exec(url);
  if (!m) return { mode: 'ok', rest: url, spec: '' };
  const spec = decodeURIComponent(m[1]);
  const n = specCounts.get(spec) || 0;
  specCounts.set(spec, n + 1);
  const body = spec.includes(':') ? spec.slice(spec.indexOf(':') + 1) : spec;
  const list = body.split(',');
  return { mode: list[Math.min(n, list.length - 1)] || 'ok', rest: m[2] || '/', spec };
}

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', () => resolve(Buffer.concat(chunks)));
  });
}

function sendJson(res, status, obj, headers = {}) {
  const b = Buffer.from(JSON.stringify(obj));
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': b.length, ...headers });
  res.end(b);
}

function errBody(code, message, type) {
  return { error: { code, message, type: type || 'error' } };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function authOk(req) {
  const a = req.headers.authorization || '';
  return /^Bearer \S+$/.test(a) && a !== 'Bearer bad';
}

function commonFailure(mode, res, service) {
  const map = {
    401: ['Invalid API Key', 'invalid_request_error'],
    402: ['Insufficient credits', 'payment_required'],
    403: ['Forbidden (moderation)', 'forbidden'],
    500: ['Internal server error', 'internal_server_error'],
    503: ['Service unavailable', 'service_unavailable'],
  };
  if (map[mode]) {
    const h = mode === '503' ? { 'Retry-After': '0' } : {};
    sendJson(res, Number(mode), errBody(Number(mode), map[mode][0], map[mode][1]), h);
    return true;
  }
  if (mode === '429reset') { // Groq style without Retry-After: only the reset hint
    sendJson(res, 429, errBody(429, 'Rate limit reached for requests', 'rate_limit'),
      { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '1.2s' });
    return true;
  }
  if (mode === '429' || mode === '429long') {
    sendJson(res, 429, errBody(429, 'Rate limit reached, please try again', 'rate_limit'),
      { 'Retry-After': mode === '429long' ? '120' : '1', 'x-ratelimit-remaining-requests': '0' });
    return true;
  }
  return false;
}

// ---- multipart/form-data ----------------------------------------------------------------------
function parseMultipart(buf, ctype) {
  const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(ctype || '');
  if (!m) return null;
  const boundary = Buffer.from('--' + (m[1] || m[2]).trim());
  const parts = {};
  let pos = buf.indexOf(boundary);
  while (pos >= 0) {
    pos += boundary.length;
    if (buf.slice(pos, pos + 2).toString() === '--') break;
    pos += 2; // CRLF
    const hend = buf.indexOf('\r\n\r\n', pos);
    if (hend < 0) return null;
    const head = buf.slice(pos, hend).toString();
    const next = buf.indexOf(boundary, hend + 4);
    if (next < 0) return null;
    const data = buf.slice(hend + 4, next - 2);
    const name = /name="([^"]*)"/i.exec(head);
    const filename = /filename="([^"]*)"/i.exec(head);
    const ct = /content-type:\s*([^\r\n]+)/i.exec(head);
    if (name) {
      const key = name[1];
      const part = { data, filename: filename ? filename[1] : null, type: ct ? ct[1] : null };
      if (parts[key]) (parts[key].more = parts[key].more || []).push(part);
      else parts[key] = part;
    }
    pos = next;
  }
  return parts;
}

function wavInfo(b) {
  if (b.length < 44 || b.toString('ascii', 0, 4) !== 'RIFF' || b.toString('ascii', 8, 12) !== 'WAVE')
    return null;
  let p = 12, fmt = null, dataLen = 0;
  while (p + 8 <= b.length) {
    const id = b.toString('ascii', p, p + 4), len = b.readUInt32LE(p + 4);
    if (id === 'fmt ') fmt = { ch: b.readUInt16LE(p + 10), rate: b.readUInt32LE(p + 12), bits: b.readUInt16LE(p + 22) };
    if (id === 'data') { dataLen = Math.min(len, b.length - p - 8); break; }
    p += 8 + len + (len & 1);
  }
  if (!fmt) return null;
  return { ...fmt, seconds: dataLen / (fmt.rate * fmt.ch * (fmt.bits / 8)) };
}

// ---- Groq-like STT ----------------------------------------------------------------------------
const STT_TEXT = {
  ok: ' Hello Kameko, how are you today?',
  ru: ' Привет, Камеко, как у тебя дела?',
  hallu_en: ' Thank you for watching!',
  hallu_ru: ' Продолжение следует...',
  lowconf: ' um the the uh',
  repeat: ' yes yes yes yes yes yes yes yes yes yes yes yes yes yes yes yes',
  silence: '',
};

async function stt(req, res, mode) {
  const body = await readBody(req);
  const parts = parseMultipart(body, req.headers['content-type']) || {};
  const field = (k) => (parts[k] ? parts[k].data.toString() : null);
  const wav = parts.file ? wavInfo(parts.file.data) : null;
  last.stt = {
    model: field('model'), language: field('language'), response_format: field('response_format'),
    temperature: field('temperature'), filename: parts.file ? parts.file.filename : null,
    file_type: parts.file ? parts.file.type : null, wav, auth: !!req.headers.authorization,
    mode,
  };
  if (!authOk(req)) return sendJson(res, 401, errBody('invalid_api_key', 'Invalid API Key', 'invalid_request_error'));
  if (commonFailure(mode, res, 'stt')) return;
  if (mode === 'stall') { res.writeHead(200, { 'Content-Type': 'application/json' }); res.write('{"text":'); return; }
  if (mode === 'malformed') { res.writeHead(200, { 'Content-Type': 'application/json' }); return res.end('{"text": "hel'); }
  if (!parts.file || !wav) return sendJson(res, 400, errBody(400, 'file must be a valid audio file', 'invalid_request_error'));
  if (!field('model')) return sendJson(res, 400, errBody(400, 'model is required', 'invalid_request_error'));
  if (LAT.stt) await sleep(LAT.stt);
  if (mode === 'slow') await sleep(3000);
  let text = STT_TEXT[mode] !== undefined ? STT_TEXT[mode] : STT_TEXT.ok;
  let lang = field('language') || (mode === 'ru' || mode === 'hallu_ru' ? 'ru' : 'en');
  let scripted = null;
  if (STT_SCRIPT && STT_SCRIPT.length && mode === 'ok') {
    scripted = STT_SCRIPT[Math.min(sttScriptPos++, STT_SCRIPT.length - 1)];
    text = ' ' + scripted.text;
    if (scripted.language) lang = scripted.language;
  }
  const seg = {
    id: 0, seek: 0, start: 0, end: wav.seconds, text, tokens: [50364, 2425, 50464], temperature: 0,
    avg_logprob: mode === 'lowconf' ? -1.6 : -0.21,
    compression_ratio: mode === 'repeat' ? 3.1 : 1.05,
    no_speech_prob: mode.startsWith('hallu') || mode === 'silence' ? 0.83 : 0.012,
  };
  if (scripted) for (const k of ['no_speech_prob', 'avg_logprob', 'compression_ratio'])
    if (typeof scripted[k] === 'number') seg[k] = scripted[k];
  const rf = field('response_format') || 'json';
  const out = rf === 'verbose_json'
    ? { task: 'transcribe', language: lang === 'ru' ? 'russian' : 'english', duration: wav.seconds, text,
        segments: text ? [seg] : [], x_groq: { id: 'req_' + crypto.randomBytes(8).toString('hex') } }
    : { text, x_groq: { id: 'req_x' } };
  sendJson(res, 200, out, { 'x-ratelimit-remaining-requests': '19', 'x-ratelimit-reset-requests': '2m59.56s' });
}

// ---- OpenRouter-like LLM ----------------------------------------------------------------------
function replyFor(body) {
  const msgs = Array.isArray(body.messages) ? body.messages : [];
  if (LLM_SCRIPT) {
    const all = JSON.stringify(msgs);
    const hit = LLM_SCRIPT.find((e) => !e.match || all.includes(e.match));
    if (hit) return typeof hit.reply === 'string' ? hit.reply : JSON.stringify(hit.reply);
  }
  const lastUser = [...msgs].reverse().find((m) => m && m.role === 'user');
  const txt = lastUser && typeof lastUser.content === 'string' ? lastUser.content : '';
  const i = txt.indexOf('ECHO:');
  if (i >= 0) return txt.slice(i + 5);
  return JSON.stringify({ thought: 'Someone greeted me; answer briefly.', should_speak: true,
    response: 'Hello there! I am Kameko, nice to meet you. What shall we talk about today?', lang: 'en' });
}

function tokens(s) {
  // small pieces, 1-4 characters, never splitting a UTF-16 surrogate pair
  const out = [];
  const cps = Array.from(s);
  for (let i = 0; i < cps.length;) {
    const n = 1 + ((i * 7) % 4);
    out.push(cps.slice(i, i + n).join(''));
    i += n;
  }
  return out;
}

async function llm(req, res, mode) {
  const raw = await readBody(req);
  let body;
  try { body = JSON.parse(raw.toString()); } catch (e) { body = null; }
  last.llm = { body, auth: !!req.headers.authorization, referer: req.headers['http-referer'] || null,
    title: req.headers['x-title'] || null, mode };
  if (!authOk(req)) return sendJson(res, 401, errBody(401, 'No auth credentials found'));
  if (!body || !Array.isArray(body.messages) || !body.model)
    return sendJson(res, 400, errBody(400, 'messages and model are required'));
  if (commonFailure(mode, res, 'llm')) return;
  if (mode === 'noformat' && (body.response_format || body.provider))
    return sendJson(res, 400, errBody(400, 'response_format is not supported by this model'));
  const id = 'gen-' + crypto.randomBytes(6).toString('hex');
  const reply = replyFor(body);
  const usage = { prompt_tokens: 42, completion_tokens: tokens(reply).length, total_tokens: 42 + tokens(reply).length };
  if (!body.stream) {
    if (mode === 'malformed') { res.writeHead(200, { 'Content-Type': 'application/json' }); return res.end('{"choices":[{"mess'); }
    if (LAT.llmFirst) await sleep(LAT.llmFirst);
    return sendJson(res, 200, { id, object: 'chat.completion', model: body.model,
      choices: [{ index: 0, message: { role: 'assistant', content: reply }, finish_reason: 'stop' }], usage });
  }
  const nl = mode === 'crlf' ? '\r\n' : '\n';
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  const send = (obj) => res.write('data: ' + (typeof obj === 'string' ? obj : JSON.stringify(obj)) + nl + nl);
  const chunk = (delta, finish) => ({ id, object: 'chat.completion.chunk', created: 1, model: body.model,
    choices: [{ index: 0, delta, finish_reason: finish || null }] });
  res.write(': OPENROUTER PROCESSING' + nl + nl);
  if (mode === 'slowfirst') await sleep(2500);
  if (LAT.llmFirst) await sleep(LAT.llmFirst);
  if (res.destroyed) return;
  send(chunk({ role: 'assistant', content: '' }));
  const toks = tokens(reply);
  const gap = LAT.llmTps ? 1000 / LAT.llmTps : 0;
  for (let i = 0; i < toks.length; i++) {
    if (res.destroyed) return;
    if (i === 6) {
      if (mode === 'stall') return; // keep the socket open, send nothing more
      if (mode === 'truncate') return res.socket.end(); // no last chunk: a cut stream
      if (mode === 'malformed') { res.write('data: {"choices":[{"delta":{"content":"x' + nl + nl); return res.end(); }
      if (mode === 'midstream_or') {
        send({ id, object: 'chat.completion.chunk', model: body.model,
          error: { code: 502, message: 'Provider disconnected' },
          choices: [{ index: 0, delta: { content: '' }, finish_reason: 'error' }] });
        return res.end();
      }
      if (mode === 'midstream_lone') { send({ error: { code: 'server_error', message: 'The model crashed' } }); return res.end(); }
      if (i % 3 === 0) res.write(': OPENROUTER PROCESSING' + nl + nl);
    }
    send(chunk({ content: toks[i] }));
    if (gap) await sleep(gap);
    else if (i % 8 === 7) await sleep(1);
  }
  send(chunk({}, 'stop'));
  send({ id, object: 'chat.completion.chunk', model: body.model, choices: [], usage });
  if (mode === 'nodone') return res.end();
  send('[DONE]');
  res.end();
}

// ---- plumbing endpoints -----------------------------------------------------------------------
async function plumbing(req, res, path, query) {
  if (path === '/echo') {
    const b = await readBody(req);
    return sendJson(res, 200, { method: req.method, headers: req.headers, length: b.length,
      body: b.length < 4096 ? b.toString() : null });
  }
  if (path === '/bytes') {
    const n = Number(query.get('n') || 0);
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': n });
    return res.end(Buffer.alloc(n, 0x61));
  }
  if (path === '/slow') {
    await sleep(Number(query.get('ms') || 1000));
    if (res.destroyed) return;
    return sendJson(res, 200, { ok: true });
  }
  if (path === '/drip') {
    const n = Number(query.get('n') || 5), ms = Number(query.get('ms') || 20);
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    for (let i = 0; i < n && !res.destroyed; i++) { res.write('chunk' + i + '\n'); await sleep(ms); }
    return res.end();
  }
  if (path === '/stall') { res.writeHead(200, { 'Content-Type': 'text/plain' }); res.write('partial'); return; }
  if (path.startsWith('/status/')) {
    const code = Number(path.slice(8));
    const h = {};
    if (query.get('retry_after')) h['Retry-After'] = query.get('retry_after');
    return sendJson(res, code, errBody(code, 'status ' + code), h);
  }
  if (path === '/truncate') {
    res.writeHead(200, { 'Content-Length': 100 });
    res.write('0123456789');
    return setTimeout(() => res.socket.destroy(), 20);
  }
  sendJson(res, 404, errBody(404, 'not found: ' + path));
}

// ---- Edge-like TTS ----------------------------------------------------------------------------
function gecToken(unixSeconds) {
  let t = Math.floor(unixSeconds) + 11644473600;
  t -= t % 300;
  const n = BigInt(t) * 10000000n;
  return crypto.createHash('sha256').update(n.toString() + TRUSTED, 'ascii').digest('hex').toUpperCase();
}

let lame = null;
function mp3Encoder() {
  if (!lame) {
    // lamejs's CommonJS entry has a missing-global bug; its bundled browser build works in a context.
    const src = fs.readFileSync(require.resolve('lamejs/lame.all.js'), 'utf8');
    const ctx = {};
    vm.createContext(ctx);
    vm.runInContext(src + ';this.L = lamejs;', ctx);
    lame = ctx.L;
  }
  return new lame.Mp3Encoder(1, 24000, 48);
}

function synthMp3(text) {
  // A tone whose length follows the text (45 ms per character, 0.3 .. 8 s): stands in for speech.
  const secs = Math.max(0.3, Math.min(8, Array.from(text).length * 0.045));
  const n = Math.round(secs * 24000);
  const pcm = new Int16Array(n);
  for (let i = 0; i < n; i++) pcm[i] = Math.round(6000 * Math.sin((2 * Math.PI * 220 * i) / 24000));
  const enc = mp3Encoder();
  const parts = [];
  for (let i = 0; i < n; i += 1152) {
    const b = enc.encodeBuffer(pcm.subarray(i, Math.min(n, i + 1152)));
    if (b.length) parts.push(Buffer.from(b.buffer, b.byteOffset, b.length));
  }
  const f = enc.flush();
  if (f.length) parts.push(Buffer.from(f.buffer, f.byteOffset, f.length));
  return { mp3: Buffer.concat(parts), seconds: secs };
}

function parseTextMessage(s) {
  const i = s.indexOf('\r\n\r\n');
  if (i < 0) return null;
  const headers = {};
  for (const line of s.slice(0, i).split('\r\n')) {
    const c = line.indexOf(':');
    if (c > 0) headers[line.slice(0, c).toLowerCase()] = line.slice(c + 1);
  }
  return { headers, body: s.slice(i + 4) };
}

function textFrame(path, requestId, body, ctype) {
  return `X-RequestId:${requestId}\r\nContent-Type:${ctype || 'application/json; charset=utf-8'}\r\n` +
    `Path:${path}\r\n\r\n${body}`;
}

function binFrame(requestId, audio, withType = true) {
  const head = Buffer.from(`X-RequestId:${requestId}\r\n` +
    (withType ? 'Content-Type:audio/mpeg\r\n' : '') + 'Path:audio\r\n');
  const b = Buffer.alloc(2 + head.length + audio.length);
  b.writeUInt16BE(head.length, 0);
  head.copy(b, 2);
  audio.copy(b, 2 + head.length);
  return b;
}

function unescapeXml(s) {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

function validateSsml(ssml) {
  const voices = ssml.match(/<voice /g) || [];
  const pros = ssml.match(/<prosody /g) || [];
  if (voices.length !== 1 || pros.length !== 1) return 'need exactly one voice and one prosody';
  const m = /<speak version='1.0' xmlns='http:\/\/www.w3.org\/2001\/10\/synthesis' xml:lang='[a-zA-Z-]+'><voice name='([^']+)'><prosody pitch='([^']+)' rate='([^']+)' volume='([^']+)'>([^<]*)<\/prosody><\/voice><\/speak>$/.exec(ssml);
  if (!m) return 'malformed ssml';
  if (!/^Microsoft Server Speech Text to Speech Voice \([a-z]{2}-[A-Z]{2}, [A-Za-z]+Neural\)$/.test(m[1])) return 'bad voice name';
  if (!/^[+-]\d+Hz$/.test(m[2]) || !/^[+-]\d+%$/.test(m[3]) || !/^[+-]\d+%$/.test(m[4])) return 'bad prosody';
  if (Buffer.byteLength(m[5]) > 4096) return 'text chunk too long';
  if (/&(?!(amp|lt|gt|quot|apos);)/.test(m[5])) return 'bad entity';
  return { voice: m[1], pitch: m[2], rate: m[3], volume: m[4], text: unescapeXml(m[5]) };
}

const wss = new WebSocketServer({ noServer: true, maxPayload: 1 << 20 });

function refuse(socket, status, text, extra = {}) {
  const date = new Date(Date.now() + CLOCK_OFFSET * 1000).toUTCString();
  let h = `HTTP/1.1 ${status} ${text}\r\nDate: ${date}\r\nContent-Length: 0\r\nConnection: close\r\n`;
  for (const [k, v] of Object.entries(extra)) h += `${k}: ${v}\r\n`;
  socket.write(h + '\r\n');
  socket.destroy();
}

function onUpgrade(req, socket, head) {
  const { mode, rest } = parseMode(req.url);
  const u = new URL(rest, 'http://x');
  if (!u.pathname.startsWith('/ws/')) {
    stats.tts.requests++;
    if (mode !== 'ok') stats.tts.with_mode++;
  }
  const q = u.searchParams;
  if (u.pathname === '/ws/echo') return wss.handleUpgrade(req, socket, head, echoSession);
  if (u.pathname === '/ws/403') return refuse(socket, 403, 'Forbidden');
  const skew = mode === 'skew' ? 3600 : CLOCK_OFFSET;
  const serverNow = Date.now() / 1000 + skew;
  const tok = q.get('Sec-MS-GEC');
  const okTok = tok === gecToken(serverNow) || tok === gecToken(serverNow - 300) || tok === gecToken(serverNow + 300);
  last.tts = { url: req.url, headers: req.headers, mode, token_ok: okTok, messages: [] };
  if (q.get('TrustedClientToken') !== TRUSTED || !/^[0-9a-f]{32}$/.test(q.get('ConnectionId') || '') ||
      !q.get('Sec-MS-GEC-Version'))
    return refuse(socket, 400, 'Bad Request');
  if (mode === '403' || !okTok) {
    const date = new Date(serverNow * 1000).toUTCString();
    socket.write(`HTTP/1.1 403 Forbidden\r\nDate: ${date}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    return socket.destroy();
  }
  if (mode === '503') return refuse(socket, 503, 'Service Unavailable');
  wss.handleUpgrade(req, socket, head, (ws) => edgeSession(ws, mode, last.tts));
}

// Plain echo for WebSocket client tests: echoes every message; "close" -> close 1000 "bye";
// "big:N" -> one binary message of N bytes; "frag" -> a message sent in three fragments.
function echoSession(ws) {
  ws.on('message', (data, isBinary) => {
    const s = isBinary ? null : data.toString();
    if (s === 'close') return ws.close(1000, 'bye');
    if (s === 'abort') return ws.terminate();
    if (s && s.startsWith('big:')) return ws.send(Buffer.alloc(Number(s.slice(4)), 7));
    if (s === 'frag') {
      ws.send('ab', { fin: false });
      ws.send('cd', { fin: false });
      return ws.send('ef', { fin: true });
    }
    ws.send(data, { binary: isBinary });
  });
}

function edgeSession(ws, mode, rec) {
  let config = null;
  ws.on('message', async (data, isBinary) => {
    if (isBinary) return ws.close(1003, 'binary not expected');
    const msg = parseTextMessage(data.toString());
    if (!msg) return ws.close(1007, 'bad message');
    rec.messages.push({ path: msg.headers.path, body: msg.body });
    if (msg.headers.path === 'speech.config') {
      try { config = JSON.parse(msg.body); } catch (e) { return ws.close(1007, 'bad speech.config'); }
      return;
    }
    if (msg.headers.path !== 'ssml') return ws.close(1007, 'unknown path');
    if (!config) return ws.close(1007, 'ssml before speech.config');
    const fmt = config.context && config.context.synthesis && config.context.synthesis.audio &&
      config.context.synthesis.audio.outputFormat;
    if (fmt !== 'audio-24khz-48kbitrate-mono-mp3' && fmt !== 'audio-24khz-96kbitrate-mono-mp3')
      return ws.close(1007, 'unsupported format');
    const v = validateSsml(msg.body);
    if (typeof v === 'string') return ws.close(1007, v);
    rec.ssml = v;
    const rid = msg.headers['x-requestid'] || 'x';
    ws.send(textFrame('turn.start', rid, '{"context":{"serviceTag":"kmk"}}'));
    if (mode === 'closenoaudio') return setTimeout(() => ws.close(1000), 20);
    ws.send(textFrame('response', rid, '{"context":{"serviceTag":"kmk"},"audio":{"type":"inline","streamId":"kmk"}}'));
    // the injected first-audio latency includes our own synthesis time (a real service's would)
    const t0 = Date.now();
    const { mp3 } = synthMp3(v.text);
    if (LAT.ttsFirst) await sleep(Math.max(0, LAT.ttsFirst - (Date.now() - t0)));
    const words = v.text.split(/\s+/).filter(Boolean);
    if (words.length)
      ws.send(textFrame('audio.metadata', rid, JSON.stringify({ Metadata: [{ Type: 'WordBoundary',
        Data: { Offset: 1000000, Duration: 2000000, text: { Text: words[0], Length: words[0].length, BoundaryType: 'WordBoundary' } } }] })));
    const step = 4096;
    for (let i = 0; i < mp3.length; i += step) {
      if (ws.readyState !== 1) return;
      if (mode === 'stall' && i >= step) return; // keep the socket open, send nothing more
      if (mode === 'badframe' && i >= step) { ws.send(Buffer.from([0xff, 0xff, 1, 2, 3])); return; }
      ws.send(binFrame(rid, mp3.subarray(i, i + step)));
      await sleep(1);
    }
    ws.send(binFrame(rid, Buffer.alloc(0), false));
    ws.send(textFrame('turn.end', rid, '{}'));
  });
}

// ---- dispatch ---------------------------------------------------------------------------------
// --tls-cert/--tls-key: serve HTTPS and WSS instead (for the TLS paths of the clients)
const tls = args['tls-cert'] && args['tls-key']
  ? { cert: fs.readFileSync(args['tls-cert']), key: fs.readFileSync(args['tls-key']) } : null;
const server = (tls ? (h) => https.createServer(tls, h) : (h) => http.createServer(h))(async (req, res) => {
  try {
    const u0 = new URL(req.url, 'http://x');
    if (u0.pathname === '/control/last') return sendJson(res, 200, last[u0.searchParams.get('service')] || null);
    if (u0.pathname === '/control/stats') return sendJson(res, 200, stats);
    if (u0.pathname === '/control/count') return sendJson(res, 200, { count: specCounts.get(u0.searchParams.get('spec')) || 0 });
    const { mode, rest } = parseMode(u0.pathname);
    const query = u0.searchParams;
    if (req.method === 'POST' && rest.endsWith('/audio/transcriptions')) {
      stats.stt.requests++;
      if (mode !== 'ok') stats.stt.with_mode++;
      return await stt(req, res, mode);
    }
    if (req.method === 'POST' && rest.endsWith('/chat/completions')) {
      stats.llm.requests++;
      if (mode !== 'ok') stats.llm.with_mode++;
      return await llm(req, res, mode);
    }
    return await plumbing(req, res, rest, query);
  } catch (e) {
    if (!res.headersSent) sendJson(res, 500, errBody(500, String(e)));
    else res.destroy();
  }
});
server.on('upgrade', onUpgrade);
server.keepAliveTimeout = 5000;
synthMp3('warm up the encoder before the first request'); // JIT warm-up off the clock
server.listen(PORT, HOST, () => {
  process.stdout.write(`PORT ${server.address().port}\n`);
});
// The peer exits with its parent: when stdin closes (the test process died) we stop too.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
