'use strict';
// voice.js - the voice half of the local Discord peer: voice gateway v8 (WebSocket) and UDP on
// loopback. Serves IP discovery, both rtpsize AEAD modes (aead_aes256_gcm_rtpsize via
// node:crypto, aead_xchacha20_poly1305_rtpsize = HChaCha20 + ChaCha20-Poly1305), heartbeats with
// seq_ack checks, READY / SESSION_DESCRIPTION / SPEAKING / CLIENTS_CONNECT / CLIENT_DISCONNECT,
// resume (op 7 -> op 9). Plays users from Opus packet files (u16 big-endian length + packet, one
// per 20 ms) with packet loss and reordering injection; records the bot's packets (decrypts them,
// checks RTP headers, seq/timestamp steps, pacing and speaking events) and writes each bot
// utterance as a packet file of the same format for the test to decode.
//
// Library: startVoice(opts) -> Promise<{endpoint, token, session_id, close()}> (used by peer.js).
// DAVE (opts.dave / --dave; voice_dave.js with @snazzah/davey): session description says protocol
// version 1, op 25 external sender, op 26 key package in -> op 27 Add proposals, op 28 commit +
// Welcome in -> davey users join, op 29 announce -> op 23 ready in -> op 22 execute; users' Opus is
// DAVE-encrypted, the bot's decrypted (failures counted in utterance.dave_failed).
// Standalone: `node voice.js --standalone [--modes aes,xchacha] [--out DIR] [--dave] [--users ID,ID]` prints one JSON line
// {"ev":"listening", endpoint, token, session_id, guild_id, user_id, channel_id} and then event
// lines; commands arrive as JSON lines on stdin:
//   {"cmd":"play","user":"ID","file":PATH,"drop":[i..],"swap":[i..],"early":N}
//       newssrc: the user's stream restarts with a new SSRC (SPEAKING maps it again);
//       early: SPEAKING is sent this many 20 ms slots after the first packet; drop: packet indices lost; swap: i and i+1 swapped
//   {"cmd":"join","user":"ID"}  {"cmd":"leave","user":"ID"}  {"cmd":"close","code":4015}
//   {"cmd":"garbage"}  (malformed datagrams, RTCP, a wrong-key packet: the bot must count and live)
//   {"cmd":"noack"} / {"cmd":"ack"}  stop / resume answering heartbeats
//   {"cmd":"quit"}
// Events: connection, identify, resume, select, heartbeat (seq_ack check), speaking,
// play_done, utterance {packets, voiced, silence_tail, seq_ok, ts_ok, gap_p50, gap_p99, gap_max,
// file}, closed.
const crypto = require('node:crypto');
const dgram = require('node:dgram');
const fs = require('node:fs');
const path = require('node:path');
const { WebSocketServer } = require('ws');

const MODES = { aes: 'aead_aes256_gcm_rtpsize', xchacha: 'aead_xchacha20_poly1305_rtpsize' };

// ---- crypto ------------------------------------------------------------------------------------
function rotl(v, n) { return ((v << n) | (v >>> (32 - n))) >>> 0; }
function hchacha20(key, nonce16) {
  const s = new Uint32Array(16);
  s[0] = 0x61707865; s[1] = 0x3320646e; s[2] = 0x79622d32; s[3] = 0x6b206574;
  for (let i = 0; i < 8; i++) s[4 + i] = key.readUInt32LE(i * 4);
  for (let i = 0; i < 4; i++) s[12 + i] = nonce16.readUInt32LE(i * 4);
  const qr = (a, b, c, d) => {
    s[a] = (s[a] + s[b]) >>> 0; s[d] = rotl(s[d] ^ s[a], 16);
    s[c] = (s[c] + s[d]) >>> 0; s[b] = rotl(s[b] ^ s[c], 12);
    s[a] = (s[a] + s[b]) >>> 0; s[d] = rotl(s[d] ^ s[a], 8);
    s[c] = (s[c] + s[d]) >>> 0; s[b] = rotl(s[b] ^ s[c], 7);
  };
  for (let i = 0; i < 10; i++) {
    qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15);
    qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14);
  }
  const out = Buffer.alloc(32);
  for (let i = 0; i < 4; i++) out.writeUInt32LE(s[i], i * 4);
  for (let i = 0; i < 4; i++) out.writeUInt32LE(s[12 + i], 16 + i * 4);
  return out;
}

function cipherFor(mode, key, counter, decrypt) {
  if (mode === MODES.aes) {
    const nonce = Buffer.alloc(12);
    nonce.writeUInt32BE(counter, 0);
    return decrypt ? crypto.createDecipheriv('aes-256-gcm', key, nonce)
      : crypto.createCipheriv('aes-256-gcm', key, nonce);
  }
  const nonce = Buffer.alloc(24);
  nonce.writeUInt32BE(counter, 0);
  const sub = hchacha20(key, nonce.subarray(0, 16));
  const n12 = Buffer.concat([Buffer.alloc(4), nonce.subarray(16, 24)]);
  const o = { authTagLength: 16 };
  return decrypt ? crypto.createDecipheriv('chacha20-poly1305', sub, n12, o)
    : crypto.createCipheriv('chacha20-poly1305', sub, n12, o);
}

// aad = RTP header (+ extension preamble); plain = extension body + payload
function seal(mode, key, counter, aad, plain) {
  const c = cipherFor(mode, key, counter, false);
  c.setAAD(aad, { plaintextLength: plain.length });
  const ct = Buffer.concat([c.update(plain), c.final()]);
  const n = Buffer.alloc(4);
  n.writeUInt32BE(counter, 0);
  return Buffer.concat([aad, ct, c.getAuthTag(), n]);
}

// -> {seq, ts, ssrc, pt, payload} or throws
function open(mode, key, pkt) {
  if (pkt.length < 12 + 20) throw new Error('short');
  if ((pkt[0] >> 6) !== 2) throw new Error('version');
  const cc = pkt[0] & 15;
  let aadLen = 12 + 4 * cc;
  const ext = (pkt[0] >> 4) & 1;
  let extWords = 0;
  if (ext) { extWords = pkt.readUInt16BE(aadLen + 2); aadLen += 4; }
  const counter = pkt.readUInt32BE(pkt.length - 4);
  const c = cipherFor(mode, key, counter, true);
  c.setAAD(pkt.subarray(0, aadLen), { plaintextLength: pkt.length - aadLen - 20 });
  c.setAuthTag(pkt.subarray(pkt.length - 20, pkt.length - 4));
  let plain = Buffer.concat([c.update(pkt.subarray(aadLen, pkt.length - 20)), c.final()]);
  plain = plain.subarray(4 * extWords);
  if ((pkt[0] >> 5) & 1) plain = plain.subarray(0, plain.length - plain[plain.length - 1]);
  return { seq: pkt.readUInt16BE(2), ts: pkt.readUInt32BE(4), ssrc: pkt.readUInt32BE(8),
    pt: pkt[1] & 0x7f, counter, payload: plain };
}

function readPackets(file) {
  const b = fs.readFileSync(file);
  const out = [];
  for (let o = 0; o + 2 <= b.length;) {
    const l = b.readUInt16BE(o);
    out.push(b.subarray(o + 2, o + 2 + l));
    o += 2 + l;
  }
  return out;
}

function writePackets(file, pkts) {
  const parts = [];
  for (const p of pkts) { const h = Buffer.alloc(2); h.writeUInt16BE(p.length, 0); parts.push(h, p); }
  fs.writeFileSync(file, Buffer.concat(parts));
}

function pct(arr, p) {
  if (!arr.length) return 0;
  const s = [...arr].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * (s.length - 1) + 0.5))];
}

// ---- the server --------------------------------------------------------------------------------
function startVoice(opts = {}) {
  const emit = opts.emit || (() => {});
  const modes = (opts.modes || ['aes', 'xchacha']).map((m) => MODES[m] || m);
  const token = opts.token || 'voice-token-' + crypto.randomBytes(6).toString('hex');
  const sessionId = opts.session_id || 'session-' + crypto.randomBytes(6).toString('hex');
  const guildId = opts.guild_id || '100000000000000001';
  const channelId = opts.channel_id || '100000000000000002';
  const botId = opts.user_id || '100000000000000003';
  const outDir = opts.out || fs.mkdtempSync('/tmp/kmk-voice-');
  const botSsrc = 1000;
  const st = {
    ws: null, seq: 0, key: null, mode: null, bot: null, users: new Map(), identified: false,
    utter: null, utterances: 0, nextSsrc: 2000, botKp: null,
    dave: null,
  };
  if (opts.dave) {
    const { DaveGateway } = require('./voice_dave.js'); // needs @snazzah/davey
    st.dave = new DaveGateway(channelId, botId);
  }

  for (const id of opts.users || []) userOf(id); // in the channel before the bot (op 11 at identify)

  const udp = dgram.createSocket('udp4');
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });

  function send(op, d) {
    if (!st.ws || st.ws.readyState !== 1) return;
    st.seq++;
    st.ws.send(JSON.stringify({ op, d, seq: st.seq }));
  }

  function sendBin(op, payload) {
    if (!st.ws || st.ws.readyState !== 1) return;
    st.seq++;
    const h = Buffer.alloc(3);
    h.writeUInt16BE(st.seq & 0xffff, 0);
    h[2] = op;
    st.ws.send(Buffer.concat([h, payload]), { binary: true });
  }

  // DAVE: Add proposals for users at the group's current epoch
  function daveAdd(ids) {
    const kps = ids.map((id) => st.dave.kps.get(id));
    if (kps.length) sendBin(27, st.dave.addProposals(kps, st.dave.epoch()));
  }

  function onBinary(data) {
    const op = data[0];
    const payload = data.subarray(1);
    emit({ ev: 'dave_op', op, len: payload.length });
    if (!st.dave) return;
    if (op === 26) { // the bot's key package: its own pending group; the gateway proposes the others
      st.botKp = Buffer.from(payload);
      daveAdd([...st.dave.users.keys()]);
    } else if (op === 28) {
      try {
        const r = st.dave.onCommitWelcome(payload);
        emit({ ev: 'dave_commit', welcome: !!r.welcome, transition: r.transition });
        const t = Buffer.alloc(2);
        t.writeUInt16BE(r.transition, 0);
        sendBin(29, Buffer.concat([t, r.commit]));
      } catch (e) {
        emit({ ev: 'dave_error', why: String(e.message || e) });
      }
    }
  }

  function userOf(id) {
    let u = st.users.get(id);
    if (!u) {
      if (st.dave) st.dave.addUser(id);
      u = { id, ssrc: st.nextSsrc++, seq: Math.floor(Math.random() * 65536), ts: 0, counter: 0 };
      st.users.set(id, u);
    }
    return u;
  }

  function play(cmd) {
    const u = userOf(cmd.user);
    if (cmd.newssrc) { u.ssrc = st.nextSsrc++; u.seq = Math.floor(Math.random() * 65536); }
    const pkts = readPackets(cmd.file);
    const drop = new Set(cmd.drop || []);
    const swap = new Set(cmd.swap || []);
    const early = cmd.early || 0;
    // build the send list with headers fixed per index, then apply swaps to the send order
    const list = pkts.map((p, i) => ({ i, p, seq: (u.seq + i) & 0xffff, ts: (u.ts + 960 * i) >>> 0 }));
    u.seq = (u.seq + pkts.length) & 0xffff; u.ts = (u.ts + 960 * pkts.length) >>> 0;
    for (let i = 0; i + 1 < list.length; i++)
      if (swap.has(i)) { const t = list[i]; list[i] = list[i + 1]; list[i + 1] = t; i++; }
    let k = 0;
    const t0 = Date.now();
    emit({ ev: 'play_start', user: u.id, t: t0 });
    const speaking = () => send(5, { user_id: u.id, ssrc: u.ssrc, speaking: 1 });
    if (early) setTimeout(speaking, 20 * early); else speaking();
    const step = () => {
      while (k < list.length && Date.now() >= t0 + 20 * k) {
        const e = list[k++];
        if (drop.has(e.i)) continue;
        const h = Buffer.alloc(12);
        h[0] = 0x80; h[1] = 0x78;
        h.writeUInt16BE(e.seq, 2); h.writeUInt32BE(e.ts, 4); h.writeUInt32BE(u.ssrc, 8);
        const media = st.dave ? st.dave.encrypt(u.id, e.p) : e.p;
        if (st.bot && st.key)
          udp.send(seal(st.mode, st.key, u.counter++ >>> 0, h, media), st.bot.port, st.bot.address);
      }
      if (k < list.length) setTimeout(step, Math.max(1, t0 + 20 * k - Date.now()));
      else emit({ ev: 'play_done', user: u.id, packets: pkts.length, dropped: drop.size });
    };
    step();
  }

  function garbage() {
    if (!st.bot) return;
    const to = [st.bot.port, st.bot.address];
    udp.send(Buffer.from([0x80]), ...to);                        // too short
    udp.send(Buffer.alloc(40, 0xff), ...to);                      // version 3
    const rtcp = Buffer.alloc(40); rtcp[0] = 0x81; rtcp[1] = 201; // RTCP receiver report
    udp.send(rtcp, ...to);
    const h = Buffer.alloc(12); h[0] = 0x80; h[1] = 0x78; h.writeUInt32BE(4242, 8);
    udp.send(seal(st.mode, crypto.randomBytes(32), 1, h, Buffer.from([0xf8, 0xff, 0xfe])), ...to); // wrong key
    const x = Buffer.alloc(16); x[0] = 0x9f; x[1] = 0x78;         // X + 15 CSRCs, truncated
    udp.send(x, ...to);
  }

  // the bot's audio
  function onBotRtp(msg, t) {
    let r;
    try { r = open(st.mode, st.key, msg); } catch (e) { emit({ ev: 'bad_bot_packet', why: String(e.message) }); return; }
    if (!st.utter) st.utter = newUtterance(true); // SPEAKING may still be in flight (UDP vs TCP)
    const u = st.utter;
    if (r.ssrc !== botSsrc || r.pt !== 0x78 || msg[0] !== 0x80) u.header_ok = false;
    if (u.last) {
      if (r.seq !== ((u.last.seq + 1) & 0xffff)) u.seq_ok = false;
      if (r.ts !== ((u.last.ts + 960) >>> 0)) u.ts_ok = false;
      if (r.counter <= u.last.counter) u.nonce_ok = false;
      u.gaps.push(t - u.last.t);
    }
    u.last = { seq: r.seq, ts: r.ts, counter: r.counter, t };
    if (u.first === undefined) u.first = t;
    if (st.dave) {
      const dec = st.dave.decrypt(r.payload);
      if (!dec) u.dave_failed++;
      else r.payload = dec;
    }
    u.pkts.push(r.payload);
    const silence = r.payload.length === 3 && r.payload[0] === 0xf8 && r.payload[1] === 0xff && r.payload[2] === 0xfe;
    if (silence) u.tail++; else { u.tail = 0; u.voiced++; }
  }

  function newUtterance(implicit) {
    return { pkts: [], gaps: [], voiced: 0, tail: 0, seq_ok: true, ts_ok: true, nonce_ok: true,
      header_ok: true, last: null, start: Date.now(), implicit, speaking_late_ms: 0, dave_failed: 0 };
  }

  function finishUtterance() {
    const u = st.utter;
    st.utter = null;
    if (!u) return;
    const file = path.join(outDir, `bot-utterance-${++st.utterances}.pkt`);
    writePackets(file, u.pkts);
    const dev = u.gaps.map((g) => Math.abs(g - 20));
    const within10 = dev.length ? dev.filter((x) => x <= 10).length / dev.length : 1;
    // audio with no SPEAKING at all, or one that came long after the first packet
    if (u.implicit || u.speaking_late_ms > 250) emit({ ev: 'rtp_without_speaking' });
    emit({ ev: 'utterance', n: st.utterances, packets: u.pkts.length, voiced: u.voiced,
      silence_tail: u.tail, seq_ok: u.seq_ok, ts_ok: u.ts_ok, nonce_ok: u.nonce_ok,
      header_ok: u.header_ok, dave_failed: u.dave_failed, gap_p50: pct(dev, 0.5), gap_p99: pct(dev, 0.99),
      gap_max: dev.length ? Math.max(...dev) : 0, within10, span_ms: u.last ? u.last.t - u.first : 0,
      start_ms: u.start, end_ms: u.end_ms || Date.now(), file });
  }

  udp.on('message', (msg, rinfo) => {
    const t = Number(process.hrtime.bigint()) / 1e6;
    if (msg.length === 74 && msg.readUInt16BE(0) === 1) {
      const r = Buffer.alloc(74);
      r.writeUInt16BE(2, 0); r.writeUInt16BE(70, 2); r.writeUInt32BE(msg.readUInt32BE(4), 4);
      r.write(rinfo.address, 8, 'ascii'); r.writeUInt16BE(rinfo.port, 72);
      udp.send(r, rinfo.port, rinfo.address);
      st.bot = { address: rinfo.address, port: rinfo.port };
      emit({ ev: 'ip_discovery', ssrc: msg.readUInt32BE(4) });
      return;
    }
    if (msg.length === 8) { st.keepalives = (st.keepalives || 0) + 1; return; } // UDP keep-alive
    if (st.key) onBotRtp(msg, t);
  });

  wss.on('connection', (ws, req) => {
    emit({ ev: 'connection', url: req.url });
    if (st.ws) { try { st.ws.terminate(); } catch (e) { /* gone */ } }
    st.ws = ws;
    let hbCount = 0;
    ws.on('message', (data, isBinary) => {
      if (isBinary) { onBinary(data); return; }
      let m;
      try { m = JSON.parse(String(data)); } catch (e) { emit({ ev: 'bad_json' }); return; }
      const d = m.d || {};
      switch (m.op) {
        case 0: {
          const ok = d.token === token && d.session_id === sessionId && d.server_id === guildId &&
            d.user_id === botId && typeof d.max_dave_protocol_version === 'number';
          emit({ ev: 'identify', ok, max_dave: d.max_dave_protocol_version });
          if (!ok) { ws.close(4004, 'authentication failed'); return; }
          st.identified = true;
          send(2, { ssrc: botSsrc, ip: '127.0.0.1', port: udp.address().port, modes,
            experiments: [] });
          const ids = [...st.users.keys()];
          if (ids.length) send(11, { user_ids: ids });
          break;
        }
        case 3: {
          hbCount++;
          const okAck = d.seq_ack === st.seq;
          if (!okAck || hbCount <= 2) emit({ ev: 'heartbeat', seq_ack: d.seq_ack, expected: st.seq, ok: okAck });
          if (!opts.noAck) send(6, { t: d.t });
          break;
        }
        case 1: {
          const mode = d.data && d.data.mode;
          const ok = d.protocol === 'udp' && modes.includes(mode) && !!st.bot &&
            d.data.port === st.bot.port;
          emit({ ev: 'select', mode, ok });
          if (!modes.includes(mode)) { ws.close(4016, 'unknown encryption mode'); return; }
          st.mode = mode;
          st.key = crypto.randomBytes(32);
          send(4, { mode, secret_key: [...st.key], dave_protocol_version: st.dave ? 1 : 0 });
          for (const u of st.users.values()) send(5, { user_id: u.id, ssrc: u.ssrc, speaking: 0 });
          if (st.dave) sendBin(25, st.dave.externalSender);
          break;
        }
        case 5: {
          emit({ ev: 'speaking', speaking: d.speaking, ssrc: d.ssrc });
          if (d.speaking && st.utter && st.utter.ending) finishUtterance();
          if (d.speaking && st.utter && st.utter.implicit) {
            st.utter.implicit = false;
            st.utter.speaking_late_ms = Date.now() - st.utter.start;
          }
          if (d.speaking && !st.utter) st.utter = newUtterance(false);
          else if (!d.speaking && st.utter && !st.utter.ending) {
            // UDP and the WebSocket race on loopback: the last packets may still be in flight
            const u = st.utter;
            u.ending = true;
            u.end_ms = Date.now();
            setTimeout(() => { if (st.utter === u) finishUtterance(); }, 250);
          }
          break;
        }
        case 7: {
          const ok = d.token === token && d.session_id === sessionId && d.server_id === guildId;
          emit({ ev: 'resume', ok, seq_ack: d.seq_ack });
          if (!ok) { ws.close(4006, 'session no longer valid'); return; }
          send(9, null);
          break;
        }
        case 23: { // ready for transition: execute it
          emit({ ev: 'dave_ready_for_transition', transition_id: d.transition_id });
          send(22, { transition_id: d.transition_id });
          if (st.dave) {
            st.dave.ready = true;
            emit({ ev: 'dave_ready', epoch: st.dave.epoch(), code: st.dave.privacyCode() });
          }
          break;
        }
        case 31:
          emit({ ev: 'dave_invalid', transition_id: d.transition_id });
          break;
        default:
          emit({ ev: 'op', op: m.op });
      }
    });
    ws.on('close', (code) => emit({ ev: 'ws_closed', code }));
    send(8, { heartbeat_interval: opts.heartbeat_interval || 1000, v: 8 });
  });

  function command(c) {
    switch (c.cmd) {
      case 'play': play(c); break;
      case 'join':
        if (st.users.has(c.user)) break;
        userOf(c.user);
        send(11, { user_ids: [c.user] });
        if (st.dave && st.botKp) daveAdd([c.user]); // the group exists: propose the Add
        break;
      case 'leave': send(13, { user_id: c.user }); st.users.delete(c.user); break;
      case 'close': if (st.ws) st.ws.close(c.code || 4015, c.reason || 'test'); break;
      case 'garbage': garbage(); break;
      case 'noack': opts.noAck = true; break; // heartbeats go unanswered (the bot must resume)
      case 'ack': opts.noAck = false; break;
      default: emit({ ev: 'unknown_cmd', cmd: c.cmd });
    }
  }

  function close() {
    finishUtterance();
    for (const c of wss.clients) c.terminate();
    wss.close();
    udp.close();
  }

  return new Promise((resolve, reject) => {
    let n = 0;
    const done = () => {
      if (++n < 2) return;
      resolve({ endpoint: `127.0.0.1:${wss.address().port}`, token, session_id: sessionId,
        guild_id: guildId, channel_id: channelId, user_id: botId, out: outDir, command, close });
    };
    udp.on('error', reject);
    wss.on('error', reject);
    udp.bind(0, '127.0.0.1', done);
    wss.on('listening', done);
  });
}

module.exports = { startVoice, seal, open, hchacha20, readPackets, writePackets };

if (require.main === module && process.argv.includes('--standalone')) {
  const arg = (k) => { const i = process.argv.indexOf(k); return i > 0 ? process.argv[i + 1] : undefined; };
  const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
  const modes = arg('--modes') ? arg('--modes').split(',') : undefined;
  startVoice({ emit: out, modes, out: arg('--out'), dave: process.argv.includes('--dave'),
    users: arg('--users') ? arg('--users').split(',') : undefined,
    heartbeat_interval: arg('--hb') ? Number(arg('--hb')) : undefined }).then((v) => {
    out({ ev: 'listening', endpoint: v.endpoint, token: v.token, session_id: v.session_id,
      guild_id: v.guild_id, channel_id: v.channel_id, user_id: v.user_id, out: v.out });
    let buf = '';
    process.stdin.on('data', (chunk) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (!line) continue;
        let c;
        try { c = JSON.parse(line); } catch (e) { out({ ev: 'bad_cmd' }); continue; }
        if (c.cmd === 'quit') { v.close(); out({ ev: 'closed' }); process.exit(0); }
        v.command(c);
      }
    });
    process.stdin.on('end', () => { v.close(); process.exit(0); });
  }, (e) => { process.stderr.write(String(e) + '\n'); process.exit(1); });
}
