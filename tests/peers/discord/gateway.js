// gateway.js - the local Discord peer's gateway (v10, JSON encoding) on a WebSocket server:
// hello with heartbeat_interval, heartbeat ACKs (can be switched off), identify -> READY (with a
// resume_gateway_url pointing back here) + GUILD_CREATE, resume (op 6) replaying the dispatches the
// bot missed, then RESUMED (op 9 false when the session or seq is unknown), op 4 voice state ->
// VOICE_STATE_UPDATE + VOICE_SERVER_UPDATE (endpoint from the voice half when it exists), and
// test-driven faults: drop the socket, close with a code, op 7, op 9, stop ACKing.
// Every dispatch carries the session's next seq; the session keeps them for resumes.
'use strict';
const crypto = require('crypto');

const GUILD = '900000000000000001';
const TEXT = '900000000000000010';
const VOICE = '900000000000000020';
const VOICE2 = '900000000000000021';
const BOT = { id: '800000000000000001', username: 'kameko', bot: true };
const USERS = {
  '700000000000000001': { id: '700000000000000001', username: 'alice' },
  '700000000000000002': { id: '700000000000000002', username: 'bob' },
  '700000000000000003': { id: '700000000000000003', username: 'carol' },
};

class Gateway {
  constructor(opts) {
    this.token = opts.token;
    this.hbMs = opts.heartbeatMs;
    this.port = () => opts.port();
    this.record = opts.record;
    this.voice = opts.voice; // async ({guildId, channelId, userId, sessionId}) -> {endpoint, token}
    this.nullEndpointFirst = !!opts.nullEndpointFirst;
    this.sessions = new Map(); // session_id -> {seq, events: [{s,t,d}], ws}
    this.current = null; // {ws, session}
    this.ack = true;
    this.voiceStates = new Map([
      ['700000000000000001', VOICE],
      ['700000000000000002', VOICE],
    ]);
    this.botSession = crypto.randomBytes(8).toString('hex');
  }

  attach(wss) {
    wss.on('connection', (ws, req) => this.onConnection(ws, req));
  }

  send(ws, obj) {
    if (ws && ws.readyState === 1) ws.send(JSON.stringify(obj));
  }

  // A dispatch in the current session: numbered, kept for resumes, sent when a socket is open.
  dispatch(t, d) {
    const session = this.session;
    if (!session) return false;
    const s = ++session.seq;
    session.events.push({ s, t, d });
    if (session.events.length > 500) session.events.shift();
    if (session.ws) this.send(session.ws, { op: 0, t, s, d });
    return true;
  }

  guildCreate() {
    const voice_states = [];
    for (const [uid, ch] of this.voiceStates) {
      if (uid === BOT.id) continue;
      voice_states.push({ user_id: uid, channel_id: ch, session_id: 'vs' + uid, deaf: false, mute: false });
    }
    return {
      id: GUILD, name: 'Kameko test guild', unavailable: false, member_count: 4,
      channels: [
        { id: TEXT, type: 0, name: 'general' },
        { id: VOICE, type: 2, name: 'Voice' },
        { id: VOICE2, type: 2, name: 'Other voice' },
      ],
      members: [{ user: BOT, roles: [] }, ...Object.values(USERS).map((u) => ({ user: u, roles: [] }))],
      voice_states,
    };
  }

  onConnection(ws, req) {
    const path = req.url;
    this.record({ ev: 'connect', path });
    const conn = { ws, session: null, identified: false };
    this.current = conn;
    this.send(ws, { op: 10, d: { heartbeat_interval: this.hbMs }, s: null, t: null });
    ws.on('message', (data) => {
      let m;
      try { m = JSON.parse(data.toString()); } catch (e) { ws.close(4002, 'Decode error'); return; }
      this.onPayload(conn, m);
    });
    ws.on('close', (code) => {
      if (conn.session && conn.session.ws === ws) conn.session.ws = null;
      this.record({ ev: 'disconnect', code });
    });
  }

  onPayload(conn, m) {
    const ws = conn.ws;
    switch (m.op) {
      case 1:
        this.record({ ev: 'heartbeat', seq: m.d });
        if (this.ack) this.send(ws, { op: 11 });
        break;
      case 2: {
        const d = m.d || {};
        this.record({ ev: 'identify', intents: d.intents, properties: d.properties, token_ok: d.token === this.token });
        if (d.token !== this.token) { ws.close(4004, 'Authentication failed.'); return; }
        if (conn.identified) { ws.close(4005, 'Already authenticated.'); return; }
        conn.identified = true;
        const id = crypto.randomBytes(16).toString('hex');
        const session = { id, seq: 0, events: [], ws };
        this.sessions.set(id, session);
        conn.session = session;
        this.session = session;
        this.dispatch('READY', {
          v: 10, user: BOT, guilds: [{ id: GUILD, unavailable: true }], session_id: id,
          resume_gateway_url: `ws://127.0.0.1:${this.port()}/resume`,
          application: { id: BOT.id, flags: 0 },
        });
        this.dispatch('GUILD_CREATE', this.guildCreate());
        break;
      }
      case 6: {
        const d = m.d || {};
        const session = this.sessions.get(d.session_id);
        this.record({ ev: 'resume', session_id: d.session_id, seq: d.seq, known: !!session, token_ok: d.token === this.token });
        if (d.token !== this.token) { ws.close(4004, 'Authentication failed.'); return; }
        if (!session || typeof d.seq !== 'number' || d.seq > session.seq) {
          this.send(ws, { op: 9, d: false });
          return;
        }
        session.ws = ws;
        conn.session = session;
        this.session = session;
        conn.identified = true;
        for (const e of session.events) if (e.s > d.seq) this.send(ws, { op: 0, t: e.t, s: e.s, d: e.d });
        this.dispatch('RESUMED', null);
        break;
      }
      case 4: {
        const d = m.d || {};
        this.record({ ev: 'voice_state', guild_id: d.guild_id, channel_id: d.channel_id, self_mute: d.self_mute, self_deaf: d.self_deaf });
        this.onVoiceStateRequest(d);
        break;
      }
      default:
        this.record({ ev: 'unknown_op', op: m.op });
    }
  }

  voiceStateUpdate(uid, channel, session) {
    if (channel) this.voiceStates.set(uid, channel); else this.voiceStates.delete(uid);
    const user = uid === BOT.id ? BOT : USERS[uid] || { id: uid, username: 'user' + uid.slice(-2) };
    this.dispatch('VOICE_STATE_UPDATE', {
      guild_id: GUILD, channel_id: channel, user_id: uid, session_id: session || 'vs' + uid,
      deaf: false, mute: false, self_deaf: false, self_mute: false,
      member: { user, roles: [] },
    });
  }

  async onVoiceStateRequest(d) {
    const channel = d.channel_id || null;
    this.voiceStateUpdate(BOT.id, channel, this.botSession);
    if (this.voiceHandle && this.voiceHandle.close) this.voiceHandle.close(); // a new server per join
    this.voiceHandle = null;
    if (!channel) return;
    if (this.nullEndpointFirst) this.dispatch('VOICE_SERVER_UPDATE', { token: 'pending', guild_id: GUILD, endpoint: null });
    let endpoint = '127.0.0.1:9', token = 'voice-' + crypto.randomBytes(6).toString('hex');
    if (this.voice) {
      try {
        const v = await this.voice({ guild_id: GUILD, channel_id: channel, user_id: BOT.id,
                                     session_id: this.botSession, token });
        if (v && v.endpoint) endpoint = v.endpoint;
        if (v && v.token) token = v.token;
        this.voiceHandle = v;
      } catch (e) {
        this.record({ ev: 'voice_error', message: String(e && e.message || e) });
      }
    }
    this.dispatch('VOICE_SERVER_UPDATE', { token, guild_id: GUILD, endpoint });
  }

  voiceCommand(c) {
    if (this.voiceHandle && this.voiceHandle.command) this.voiceHandle.command(c);
    else this.record({ ev: 'voice_error', message: 'no voice server running' });
  }

  // ---- faults and scripted events (from the control channel)
  drop() { if (this.current) this.current.ws.terminate(); }
  close(code) { if (this.current) this.current.ws.close(code, 'closed by test'); }
  reconnect() { if (this.current) this.send(this.current.ws, { op: 7, d: null }); }
  invalidSession(resumable) {
    if (!this.current) return;
    if (!resumable && this.current.session) {
      this.sessions.delete(this.current.session.id);
      if (this.session === this.current.session) this.session = null;
    }
    this.send(this.current.ws, { op: 9, d: !!resumable });
  }
  setAck(on) { this.ack = !!on; }

  message(uid, content) {
    const author = USERS[uid] || { id: uid, username: 'user' };
    return this.dispatch('MESSAGE_CREATE', {
      id: String(BigInt('600000000000000000') + BigInt(Date.now() % 1e9)), channel_id: TEXT,
      guild_id: GUILD, author, member: { roles: [] }, content, type: 0,
    });
  }

  interaction(interactions, name, uid, option) {
    const user = USERS[uid] || { id: uid, username: 'user' };
    const it = interactions.create(name);
    const data = { id: it.cmdId, name, type: 1 };
    if (option !== undefined) data.options = [{ name: 'name', type: 3, value: option }];
    this.dispatch('INTERACTION_CREATE', {
      id: it.id, application_id: BOT.id, type: 2, token: it.token, version: 1,
      guild_id: GUILD, channel_id: TEXT, member: { user, roles: [], nick: null }, data,
    });
    return it.id;
  }
}

module.exports = { Gateway, GUILD, TEXT, VOICE, VOICE2, BOT, USERS };
