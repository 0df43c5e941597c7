/* room.js - the browser room page's main thread: joining, the WebSocket (PROTOCOL.md), wiring the
 * microphone worklet (capture-worklet.js) and the agent-voice worklet (player-worklet.js), and
 * rendering the engine's events (transcripts, decisions, per-turn latency, drops, reloads).
 *
 * Bounded: the transcript and logs keep their last MAX_LINES entries; microphone frames are dropped
 * (not queued) while the socket's send buffer is over SEND_LIMIT bytes.
 *
 * For tests and the curious, window.kameko exposes counters: frames sent, agent audio played and its
 * loudness, flushes, and each barge-in's measured delays (voice onset -> playback silent); the last
 * 500 events, each with _rx = its arrival time on performance.now()'s clock.
 */
const MAX_LINES = 200;
const SEND_LIMIT = 64 * 1024;
const VOICE_RMS = 0.02; /* a 20 ms mic frame louder than this counts as voice (page-side measure) */
const MUTE_TAIL_FRAMES = 150; /* 3 s of silence sent after muting */
const ONSET_GAP_MS = 300; /* quiet this long before a loud frame makes it a new voice onset */

const $ = (sel) => document.querySelector(sel);
const el = (tag, props = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const kid of kids) if (kid != null) e.append(kid);
  return e;
};
const ms = (v) => (v == null || Number.isNaN(v) ? '—' : v < 10 ? v.toFixed(1) : `${Math.round(v)}`);
/* a distinct colour per speaker, in order of appearance */
const PALETTE = [210, 150, 25, 275, 330, 185, 45, 100, 300];
const hues = new Map();
const hue = (name) => {
  if (!hues.has(name)) hues.set(name, PALETTE[hues.size % PALETTE.length]);
  return hues.get(name);
};
const keyOf = (name) => String(name).toLowerCase().replace(/[^a-z0-9_-]/g, '_');

const stats = {
  joined: false,
  me: null,
  micOk: false,
  framesSent: 0,
  framesDropped: 0,
  voiceFrames: 0,
  lastVoiceOnset: null, /* performance.now() of the last voice onset that was sent */
  played: 0,
  peakRms: 0,
  playing: false,
  starts: 0,
  flushes: 0,
  flushesWhilePlaying: 0,
  bargeIns: [],
  events: 0,
  eventTypes: {},
  errors: [],
};
window.kameko = { stats, events: [] };

let ws = null;
let ctx = null;
let extraCtx = null; /* a capture-only context, when the microphone cannot join ctx */
let micStream = null;
let captureNode = null;
let playerNode = null;
let gainNode = null;
let muted = false;
let leaving = false; /* the person pressed Leave: the socket's close is expected */
let muteTail = 0; /* silent frames still to send after muting */
let lastLoudAt = -1e9;
let available = [];
let active = [];
const peers = new Map(); /* name -> {li, state} */
const liveLines = new Map(); /* speaker -> li shown while speaking */
const turns = new Map(); /* speaker -> turn waiting for its stages */
const pendingReplies = []; /* turns whose reply was decided but not heard yet (last 8) */
let heardTurn = null; /* the turn whose first audio this page is waiting to hear */
let pendingFlush = null;

function setStatus(text, kind = '') {
  const s = $('#status');
  s.textContent = text;
  s.className = `status ${kind}`;
}

function trim(list) {
  while (list.children.length > MAX_LINES) list.firstElementChild.remove();
}

function addLine(kind, who, text, meta, data = {}) {
  const list = $('#transcript');
  const near = list.scrollHeight - list.scrollTop - list.clientHeight < 80; /* reading the end */
  const li = el('li', { class: kind, dataset: { kind, speaker: who || '', ...data } });
  if (who) {
    const w = el('span', { class: 'who', text: who });
    if (kind !== 'agent') w.style.color = `hsl(${hue(who)} 60% 42%)`;
    li.append(w);
  }
  li.append(el('span', { class: 'text', text }));
  li.append(el('span', { class: 'meta', text: meta || '' }));
  list.append(li);
  trim(list);
  if (near) list.scrollTop = list.scrollHeight;
  return li;
}

function addLog(listSel, cls, parts, data = {}) {
  const list = $(listSel);
  const empty = list.querySelector('.empty');
  if (empty) empty.remove();
  const li = el('li', { class: cls, dataset: data }, ...parts);
  list.prepend(li);
  while (list.children.length > MAX_LINES) list.lastElementChild.remove();
  return li;
}

/* ---------- people ---------- */

function setPeers(names) {
  const list = $('#peers');
  for (const [name, p] of peers) {
    if (!names.includes(name)) {
      p.li.remove();
      peers.delete(name);
    }
  }
  for (const name of names) {
    if (peers.has(name)) continue;
    const label = el('span', { class: 'name', text: name });
    label.style.color = `hsl(${hue(name)} 60% 42%)`;
    const li = el('li', { dataset: { peer: name, state: 'idle' } },
      el('span', { class: 'dot', 'aria-hidden': 'true' }),
      label,
      name === stats.me ? el('span', { class: 'me', text: '(you)' }) : null,
      el('span', { class: 'what', text: '' }));
    list.append(li);
    peers.set(name, { li });
  }
}

function setPeerState(name, state, what) {
  const p = peers.get(name);
  if (!p) return;
  p.li.dataset.state = state;
  p.li.querySelector('.what').textContent = what;
}

/* ---------- personas ---------- */

/* One card per persona, by the display name events carry ("Marta"); the cast picker lists file
   stems ("shopkeeper"), which events do not mention, so cards appear with a persona's first event. */
function personaCard(name) {
  const id = `persona-${keyOf(name)}`;
  let card = document.getElementById(id);
  if (card) return card;
  $('#persona-cards .empty')?.remove();
  card = el('article', { class: 'persona-card', id, dataset: { persona: name } },
    el('header', {}, el('h3', { text: name }), el('span', { class: 'badge', text: 'listening' })),
    el('p', { class: 'thought' }, el('b', { text: 'Thought: ' }), el('span', { text: 'no decision yet' })),
    el('p', { class: 'said', text: '' }),
    el('p', { class: 'about', text: '' }));
  $('#persona-cards').append(card);
  return card;
}

function renderCast() {
  const list = $('#cast-list');
  list.replaceChildren();
  const names = available.length ? available.map((p) => p.name) : active.slice();
  for (const name of names) {
    const id = `cast-${keyOf(name)}`;
    const box = el('input', { type: 'checkbox', id, value: name });
    box.checked = active.includes(name);
    const file = (available.find((p) => p.name === name) || {}).file;
    list.append(el('label', { for: id, title: file || '' }, box, name));
  }
  if (!names.length) list.append(el('span', { class: 'hint', text: 'The server listed no personas.' }));
}

/* ---------- latency ---------- */

function turnRow(turn) {
  if (!turn.row) {
    turn.row = el('tr', { dataset: { speaker: turn.speaker } });
    for (let i = 0; i < 6; i++) turn.row.append(el('td'));
    turn.row.firstChild.className = 'turn';
    turn.row.lastChild.previousSibling.className = 'total';
    const body = $('#latency-table tbody');
    body.prepend(turn.row);
    while (body.children.length > 30) body.lastElementChild.remove();
  }
  const c = turn.row.children;
  c[0].replaceChildren(el('b', { text: turn.speaker }), ` ${turn.text ? `“${turn.text}”` : '…'}`,
    el('span', { class: 'sub', text: turn.outcome || '' }));
  c[1].textContent = ms(turn.stt);
  c[2].textContent = ms(turn.brain);
  c[3].textContent = ms(turn.tts);
  c[4].textContent = ms(turn.total);
  c[5].textContent = ms(turn.heard);
  c[5].title = 'speech_end event received -> first agent sample played in this page';
}

/* ---------- events ---------- */

function onEvent(ev) {
  ev._rx = performance.now(); /* arrival time on this page's clock */
  stats.events++;
  stats.eventTypes[ev.type] = (stats.eventTypes[ev.type] || 0) + 1;
  const log = window.kameko.events;
  log.push(ev);
  if (log.length > 500) log.shift();
  const who = ev.speaker;
  const lat = ev.latency_ms || {};
  switch (ev.type) {
    case 'join':
      addLine('system', null, `${who} joined`);
      break;
    case 'leave':
      addLine('system', null, `${who} left`);
      liveLines.get(who)?.remove();
      liveLines.delete(who);
      break;
    case 'speech_start': {
      setPeerState(who, 'speaking', 'speaking…');
      if (!liveLines.has(who)) liveLines.set(who, addLine('live', who, 'speaking…'));
      break;
    }
    case 'speech_end': {
      setPeerState(who, 'transcribing', 'transcribing…');
      const live = liveLines.get(who);
      if (live) live.querySelector('.text').textContent = 'transcribing…';
      turns.set(who, { speaker: who, endAt: performance.now(), endT: ev.t });
      break;
    }
    case 'transcript': {
      const text = String(ev.text ?? '');
      setPeerState(who, 'idle', text.length > 28 ? `“${text.slice(0, 27)}…”` : `“${text}”`);
      liveLines.get(who)?.remove();
      liveLines.delete(who);
      const conf = ev.confidence != null ? ` · ${Math.round(ev.confidence * 100)}%` : '';
      addLine('transcript', who, text, `${ev.provider || ''}${conf}`);
      const turn = turns.get(who) || { speaker: who };
      turn.text = text;
      turn.stt = lat.stt ?? (turn.endT != null ? (ev.t - turn.endT) * 1000 : null);
      turn.outcome = 'waiting for the personas';
      turns.set(who, turn);
      turnRow(turn);
      break;
    }
    case 'transcript_dropped': {
      setPeerState(who, 'idle', '');
      liveLines.get(who)?.remove();
      liveLines.delete(who);
      turns.delete(who);
      addLog('#dropped', 'fail', [el('b', { text: who }), ' transcript dropped: ',
        el('span', { class: 'reason', text: ev.reason || 'unknown' }),
        ev.text ? ` — “${ev.text}”` : '', ` (${ev.provider || '?'}, ${(ev.audio_s ?? 0).toFixed(1)} s)`],
      { kind: 'transcript_dropped', reason: ev.reason || '' });
      break;
    }
    case 'chat': {
      addLine('chat', who, ev.text);
      turns.set(who, { speaker: who, endAt: performance.now(), endT: ev.t, text: ev.text, chat: true });
      break;
    }
    case 'decision': onDecision(ev); break;
    case 'audio_out_start': {
      addLine('agent', who, ev.text, ev.provider || '', { persona: who });
      /* the turn this reply answers: the decision whose response it speaks */
      const text = ev.text || '';
      const i = pendingReplies.findIndex((t) => t.response && (t.response === text ||
        text.startsWith(t.response.slice(0, 24)) || t.response.startsWith(text.slice(0, 24))));
      const turn = i >= 0 ? pendingReplies.splice(i, 1)[0] : null;
      if (turn) {
        turn.tts = lat.tts_first_audio;
        turn.total = lat.speech_end_to_audio ?? null;
        turn.outcome = `${who} answered`;
        turnRow(turn);
        heardTurn = turn;
      }
      const card = personaCard(ev.persona || who);
      card.querySelector('.badge').textContent = 'speaking';
      break;
    }
    case 'audio_out_end': {
      const card = personaCard(ev.persona || who);
      card.querySelector('.badge').textContent = ev.reason === 'interrupted' ? 'interrupted' : 'listening';
      break;
    }
    case 'interrupted': {
      const line = [...document.querySelectorAll('#transcript li.agent')].filter((l) => l.dataset.persona === who).pop();
      if (line) {
        line.classList.add('interrupted');
        line.querySelector('.meta').textContent += ` · interrupted by ${ev.by}; heard: “${ev.heard || ''}”`;
      }
      addLine('system', null, `${who} was interrupted by ${ev.by}`);
      break;
    }
    case 'reply_dropped': {
      const i = pendingReplies.findIndex((t) => t.response && t.response === ev.response);
      if (i >= 0) {
        const turn = pendingReplies.splice(i, 1)[0];
        turn.outcome = `${ev.persona || who}'s reply dropped (${ev.reason || '?'})`;
        turnRow(turn);
      }
      addLog('#dropped', 'fail', [el('b', { text: ev.persona || who }), ' reply dropped: ',
        el('span', { class: 'reason', text: ev.reason || '' }), ev.response ? ` — “${ev.response}”` : ''],
      { kind: 'reply_dropped', reason: ev.reason || '' });
      break;
    }
    case 'persona_reload': {
      const okay = ev.ok !== false;
      let error = ev.error || 'error';
      if (ev.file && error.startsWith(ev.file)) error = ev.file.split('/').pop() + error.slice(ev.file.length);
      addLog('#reloads', okay ? 'ok' : 'fail', [el('b', { text: ev.persona || ev.file || '?' }),
        okay ? ` reloaded in ${ms(ev.ms)} ms` : ` kept the old version: ${error}`],
      { ok: String(okay) });
      break;
    }
    case 'cast': {
      const names = Array.isArray(ev.personas) ? ev.personas : [];
      const keep = new Set(names.map((n) => `persona-${keyOf(n)}`));
      for (const card of [...document.querySelectorAll('.persona-card')]) if (!keep.has(card.id)) card.remove();
      for (const n of names) personaCard(n);
      const added = (ev.added || []).length ? ` (joined: ${ev.added.join(', ')})` : '';
      const removed = (ev.removed || []).length ? ` (left: ${ev.removed.join(', ')})` : '';
      addLine('system', null, `Cast: ${names.join(', ')}${added}${removed}`);
      break;
    }
    case 'error':
      addLine('system', null, `error in ${ev.stage || '?'}: ${ev.message || ''}`);
      break;
    default:
      break;
  }
}

function onDecision(ev) {
  const name = ev.persona || ev.speaker;
  const card = personaCard(name);
  card.dataset.shouldSpeak = String(!!ev.should_speak);
  card.dataset.to = ev.to || '';
  const badge = card.querySelector('.badge');
  badge.textContent = ev.should_speak ? 'will speak' : 'stays silent';
  badge.className = `badge ${ev.should_speak ? 'speak' : 'silent'}`;
  card.querySelector('.thought span').textContent = ev.thought || '(none given)';
  card.querySelector('.said').textContent = ev.should_speak && ev.response ? `“${ev.response}”` : '';
  card.querySelector('.about').textContent =
    `on ${ev.trigger || '?'}${ev.to ? ` from ${ev.to}` : ''}${ev.addressed_me ? ' · addressed by name' : ''}` +
    `${ev.latency_ms && ev.latency_ms.brain != null ? ` · ${ev.latency_ms.brain} ms` : ''}`;
  if ((ev.trigger === 'transcript' || ev.trigger === 'chat') && ev.to) {
    /* every persona decides on the turn; the row follows the one that speaks, else the first */
    const turn = turns.get(ev.to);
    if (turn && !turn.answerer && (ev.should_speak || turn.brain == null)) {
      turn.brain = ev.latency_ms && ev.latency_ms.brain;
      turn.outcome = ev.should_speak ? `${name} will answer` : `${name}: silent (${ev.thought || 'no reason'})`;
      turnRow(turn);
      if (ev.should_speak) {
        turn.answerer = name;
        turn.response = ev.response;
        pendingReplies.push(turn);
        if (pendingReplies.length > 8) pendingReplies.shift();
      }
    }
  }
}

/* ---------- audio ---------- */

function onPlayerMessage(m) {
  if (m.type === 'stats') {
    stats.played = m.played;
    stats.rms = m.rms;
    stats.peakRms = Math.max(stats.peakRms, m.peakRms);
    stats.playing = m.playing;
    stats.bufferedMs = m.bufferedMs;
    stats.drains = m.drains;
    stats.overflows = m.overflows;
    const a = $('#agent-audio');
    a.textContent = m.playing ? `Agent voice: playing (${Math.round(m.bufferedMs)} ms buffered)` : 'Agent voice: idle';
    a.classList.toggle('on', m.playing);
  } else if (m.type === 'started') {
    stats.starts++;
    stats.playing = true;
    if (heardTurn && heardTurn.endAt != null && heardTurn.heard == null) {
      heardTurn.heard = performance.now() - heardTurn.endAt;
      turnRow(heardTurn);
      heardTurn = null;
    }
  } else if (m.type === 'drained') {
    stats.playing = false;
  } else if (m.type === 'flushed') {
    const now = performance.now();
    stats.flushes++;
    stats.playing = false;
    stats.played = m.played;
    if (m.wasPlaying) stats.flushesWhilePlaying++;
    const f = pendingFlush;
    pendingFlush = null;
    if (!f) return;
    const rec = {
      reason: f.reason,
      wasPlaying: m.wasPlaying,
      droppedMs: (m.dropped * 1000) / 48000,
      playedAtFlush: m.played,
      flushAt: f.at,
      silentAt: now,
      flushToSilentMs: now - f.at,
      voiceOnsetToSilentMs: null,
    };
    /* this page's own voice onset, if it is what interrupted the agent */
    if (stats.lastVoiceOnset != null && now - stats.lastVoiceOnset < 3000) {
      rec.voiceOnsetToSilentMs = now - stats.lastVoiceOnset;
    }
    stats.bargeIns.push(rec);
    if (stats.bargeIns.length > 50) stats.bargeIns.shift();
  }
}

function onCaptureFrame(m) {
  const now = performance.now();
  $('#mic-level').value = Math.min(1, m.rms * 4);
  if (!ws || ws.readyState !== WebSocket.OPEN) return;
  if (muted && muteTail <= 0) return;
  if (ws.bufferedAmount > SEND_LIMIT) {
    stats.framesDropped++;
    return;
  }
  if (muted) {
    /* a few seconds of digital silence after muting, so an utterance cut by the mute still ends */
    muteTail--;
    ws.send(new ArrayBuffer(m.pcm.byteLength));
    return;
  }
  ws.send(m.pcm);
  stats.framesSent++;
  if (m.rms >= VOICE_RMS) {
    stats.voiceFrames++;
    if (now - lastLoudAt > ONSET_GAP_MS) stats.lastVoiceOnset = now;
    lastLoudAt = now;
  }
}

async function startAudio() {
  if (!window.isSecureContext || !window.AudioWorkletNode || !navigator.mediaDevices) {
    /* browsers give microphones and AudioWorklets only to https:// and localhost pages */
    throw new Error('this page is not a secure context (use http://127.0.0.1 or localhost, or HTTPS); ' +
      'you can still read and chat');
  }
  /* 48 kHz so the agent's frames play without resampling; the capture worklet takes any rate */
  try {
    ctx = new AudioContext({ sampleRate: 48000, latencyHint: 'interactive' });
  } catch {
    ctx = new AudioContext({ latencyHint: 'interactive' });
  }
  stats.sampleRate = ctx.sampleRate;
  stats.baseLatencyMs = (ctx.baseLatency || 0) * 1000;
  await ctx.audioWorklet.addModule('player-worklet.js');
  await ctx.audioWorklet.addModule('capture-worklet.js');
  playerNode = new AudioWorkletNode(ctx, 'kameko-player', {
    numberOfInputs: 0,
    outputChannelCount: [1],
    processorOptions: { prebufferMs: 60, maxMs: 4000 },
  });
  playerNode.port.onmessage = (e) => onPlayerMessage(e.data);
  gainNode = new GainNode(ctx, { gain: Number($('#volume').value) });
  playerNode.connect(gainNode).connect(ctx.destination);
  if (ctx.state !== 'running') await ctx.resume().catch(() => {});

  try {
    micStream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
    });
  } catch (err) {
    stats.errors.push(`microphone: ${err.name}`);
    return `Microphone unavailable (${err.name}). You can still listen and chat.`;
  }
  let src;
  try {
    src = ctx.createMediaStreamSource(micStream);
  } catch {
    /* some browsers cannot connect a microphone to a context at another rate: capture in its own */
    const capCtx = new AudioContext();
    await capCtx.audioWorklet.addModule('capture-worklet.js');
    src = capCtx.createMediaStreamSource(micStream);
    captureNode = new AudioWorkletNode(capCtx, 'kameko-capture', { numberOfOutputs: 0 });
    captureNode.port.onmessage = (e) => onCaptureFrame(e.data);
    src.connect(captureNode);
    extraCtx = capCtx;
    stats.micOk = true;
    return null;
  }
  captureNode = new AudioWorkletNode(ctx, 'kameko-capture', { numberOfOutputs: 0 });
  captureNode.port.onmessage = (e) => onCaptureFrame(e.data);
  src.connect(captureNode);
  stats.micOk = true;
  return null;
}

function stopAudio() {
  micStream?.getTracks().forEach((t) => t.stop());
  micStream = null;
  ctx?.close().catch(() => {});
  extraCtx?.close().catch(() => {});
  ctx = extraCtx = null;
  captureNode = playerNode = gainNode = null;
}

/* ---------- socket ---------- */

function wsUrl() {
  const token = new URLSearchParams(location.search).get('token');
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/ws${token ? `?token=${encodeURIComponent(token)}` : ''}`;
}

function onMessage(e) {
  if (typeof e.data !== 'string') {
    playerNode?.port.postMessage({ type: 'pcm', pcm: e.data }, [e.data]);
    return;
  }
  let m;
  try {
    m = JSON.parse(e.data);
  } catch {
    return;
  }
  switch (m.type) {
    case 'welcome':
      stats.me = m.you;
      stats.joined = true;
      available = Array.isArray(m.available) ? m.available : available;
      active = Array.isArray(m.active) ? m.active : active;
      renderCast();
      setStatus(`In the room as ${m.you}`, 'live');
      startPings();
      break;
    case 'pong': {
      const sent = pings.get(m.id);
      pings.delete(m.id);
      if (sent != null && stats.joined) {
        stats.rttMs = performance.now() - sent;
        setStatus(`In the room as ${stats.me} · ${Math.round(stats.rttMs)} ms to the server`, 'live');
      }
      break;
    }
    case 'event':
      if (m.event && typeof m.event === 'object') onEvent(m.event);
      break;
    case 'flush':
      pendingFlush = { at: performance.now(), reason: m.reason };
      playerNode?.port.postMessage({ type: 'flush' });
      break;
    case 'peers':
      if (Array.isArray(m.peers)) setPeers(m.peers);
      break;
    case 'personas':
      if (Array.isArray(m.available)) available = m.available;
      if (Array.isArray(m.active)) active = m.active;
      renderCast();
      break;
    case 'error':
      stats.errors.push(m.message);
      addLine('system', null, `server: ${m.message}`);
      break;
    default:
      break;
  }
}

/* a ping every 5 s shows the round trip to the server in the status line */
const pings = new Map();
let pingTimer = null;
let pingId = 0;
function startPings() {
  if (pingTimer) return;
  const ping = () => {
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    pingId++;
    pings.set(pingId, performance.now());
    if (pings.size > 4) pings.delete(pings.keys().next().value); /* unanswered ones */
    send({ type: 'ping', id: pingId });
  };
  ping();
  pingTimer = setInterval(ping, 5000);
}

function stopPings() {
  clearInterval(pingTimer);
  pingTimer = null;
  pings.clear();
}

async function join(name) {
  $('#join-btn').disabled = true;
  $('#mute').disabled = false;
  setStatus('Starting audio…');
  const micNote = await startAudio().catch((err) => `Audio failed to start: ${err.message}`);
  setStatus('Connecting…');
  ws = new WebSocket(wsUrl(), 'kameko.room.v1');
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', name, rate: 16000 }));
  ws.onmessage = onMessage;
  const sock = ws;
  ws.onclose = (e) => {
    if (sock !== ws) return; /* an old socket (the person left and joined again) */
    stopPings();
    const was = stats.joined;
    stats.joined = false;
    if (leaving) {
      leaving = false;
      return;
    }
    if (!was) {
      stopAudio();
      $('#join-btn').disabled = false;
      $('#join').hidden = false;
      $('#room').hidden = true;
      const err = $('#join-error');
      err.textContent = `Could not join${e.reason ? `: ${e.reason}` : ' (is the server running, and the token right?)'}`;
      err.hidden = false;
      setStatus('Not connected', 'bad');
    } else {
      stopAudio();
      setStatus(`Disconnected${e.reason ? `: ${e.reason}` : ''} — reload the page to rejoin`, 'bad');
      $('#mute').disabled = true;
    }
  };
  $('#join').hidden = true;
  $('#room').hidden = false;
  if (micNote) addLine('system', null, micNote);
  $('#chat').focus();
}

function send(obj) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj));
}

/* ---------- controls ---------- */

function init() {
  const saved = localStorage.getItem('kameko.name');
  if (saved) $('#name').value = saved;
  $('#join-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const name = $('#name').value.trim();
    if (!name) return;
    localStorage.setItem('kameko.name', name);
    $('#join-error').hidden = true;
    join(name);
  });
  $('#chat-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = $('#chat').value.trim();
    if (!text) return;
    send({ type: 'chat', text });
    $('#chat').value = '';
  });
  $('#mute').addEventListener('click', () => {
    muted = !muted;
    muteTail = muted && stats.joined ? MUTE_TAIL_FRAMES : 0;
    const b = $('#mute');
    b.setAttribute('aria-pressed', String(muted));
    b.textContent = muted ? 'Unmute microphone' : 'Mute microphone';
  });
  $('#volume').addEventListener('input', (e) => {
    if (gainNode) gainNode.gain.value = Number(e.target.value);
  });
  $('#leave').addEventListener('click', () => {
    leaving = true;
    stats.joined = false;
    stopPings();
    ws?.close(1000, 'left');
    stopAudio();
    setStatus('You left the room.');
    setPeers([]);
    $('#room').hidden = true;
    $('#join').hidden = false;
    $('#join-btn').disabled = false;
    $('#name').focus();
  });
  $('#cast-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const chosen = [...document.querySelectorAll('#cast-list input:checked')].map((b) => b.value);
    if (!chosen.length) {
      addLine('system', null, 'Choose at least one persona.');
      return;
    }
    send({ type: 'personas', active: chosen });
  });
  const q = new URLSearchParams(location.search);
  if (q.get('name') && !saved) $('#name').value = q.get('name').slice(0, 32);
  if (q.get('muted') === '1') $('#mute').click();
  $('#name').focus();
}

init();
