#!/usr/bin/env node
// peer.js - a loopback stand-in for Discord for the end-to-end tests: the gateway WebSocket
// (gateway.js), the REST routes the bot uses (rest.js) and, when tests/peers/discord/voice.js
// exists, the voice half (voice gateway + UDP) whose endpoint goes into VOICE_SERVER_UPDATE.
//
// Usage: node peer.js --port 0 --token TOKEN [--heartbeat-ms 41250] [--null-endpoint-first 1]
//        [--voice-out DIR] [--voice-modes aes,xchacha] [--voice-hb MS] [--voice-dave 1]
//        [--voice-users ID,ID]  (for voice.js: DAVE on; users already in the call)
// stdout: first line "PORT <n>", then one JSON record per line ({ev: ...}) for every thing the
//         bot did (connect, identify, resume, heartbeat, voice_state, rest, interaction_response,
//         edit_original, disconnect) and the voice half's records.
// stdin (one command per line; "ok <cmd>" or {ev:"interaction_created", id} is recorded back):
//   drop | close CODE | reconnect | invalid_session true|false | ack on|off
//   interaction NAME USER_ID [OPTION]      message USER_ID TEXT...
//   voice_state USER_ID CHANNEL_ID|null    rest_fail 429|401 [COUNT]
//   voice {JSON}                           (a voice.js command for the running voice server:
//                                           play, join, leave, close, garbage; records are "v.*")
// The peer exits when stdin closes.
'use strict';
const http = require('http');
const fs = require('fs');
const path = require('path');
const readline = require('readline');
const { WebSocketServer } = require('ws');
const { Gateway, BOT } = require('./gateway');
const { Rest, Interactions } = require('./rest');

const args = {};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a.startsWith('--')) args[a.slice(2)] = process.argv[i + 1], i++;
}
const TOKEN = args.token || 'test-token';
let port = 0;

function record(obj) {
  obj.t = Date.now();
  process.stdout.write(JSON.stringify(obj) + '\n');
}

let voice = null;
const voicePath = path.join(__dirname, 'voice.js');
if (fs.existsSync(voicePath)) {
  try {
    const mod = require(voicePath);
    if (typeof mod.startVoice === 'function') voice = mod;
  } catch (e) {
    record({ ev: 'voice_error', message: 'voice.js failed to load: ' + e.message });
  }
}

const interactions = new Interactions();
const rest = new Rest({ token: TOKEN, record, interactions, appId: BOT.id });
const gw = new Gateway({
  token: TOKEN,
  heartbeatMs: Number(args['heartbeat-ms'] || 41250),
  nullEndpointFirst: args['null-endpoint-first'] === '1',
  port: () => port,
  record,
  // the voice half's records are prefixed "v." (its identify/resume are not the gateway's)
  voice: voice ? (o) => voice.startVoice(Object.assign({
    emit: (r) => record(Object.assign(r, { ev: 'v.' + r.ev })),
    out: args['voice-out'],
    modes: args['voice-modes'] ? args['voice-modes'].split(',') : undefined,
    heartbeat_interval: args['voice-hb'] ? Number(args['voice-hb']) : undefined,
    dave: args['voice-dave'] === '1',
    users: args['voice-users'] ? args['voice-users'].split(',') : undefined,
  }, o)) : null,
});

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (req.url.startsWith('/api/v10/')) rest.handle(req, res, Buffer.concat(chunks).toString());
    else { res.writeHead(404); res.end(); }
  });
});
const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (req, sock, head) => {
  const u = new URL(req.url, 'http://x');
  if (u.searchParams.get('v') !== '10' || u.searchParams.get('encoding') !== 'json') {
    sock.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, sock, head, (ws) => wss.emit('connection', ws, req));
});
gw.attach(wss);

function command(line) {
  const p = line.trim().split(/\s+/);
  const cmd = p[0];
  if (!cmd) return;
  switch (cmd) {
    case 'drop': gw.drop(); break;
    case 'close': gw.close(Number(p[1])); break;
    case 'reconnect': gw.reconnect(); break;
    case 'invalid_session': gw.invalidSession(p[1] === 'true'); break;
    case 'ack': gw.setAck(p[1] !== 'off'); break;
    case 'interaction': {
      const id = gw.interaction(interactions, p[1], p[2], p[3]);
      record({ ev: 'interaction_created', id, name: p[1] });
      return;
    }
    case 'message': gw.message(p[1], line.trim().split(/\s+/).slice(2).join(' ')); break;
    case 'voice_state': gw.voiceStateUpdate(p[1], p[2] === 'null' ? null : p[2]); break;
    case 'rest_fail': for (let i = 0; i < Number(p[2] || 1); i++) rest.inject.push(Number(p[1])); break;
    case 'voice': { // voice {"cmd":"play",...}: a command for the running voice server (voice.js)
      let c;
      try { c = JSON.parse(line.trim().slice(5)); } catch (e) { record({ ev: 'bad_command', line }); return; }
      gw.voiceCommand(c);
      break;
    }
    default: record({ ev: 'bad_command', line }); return;
  }
  record({ ev: 'ok', cmd });
}

server.listen(Number(args.port || 0), '127.0.0.1', () => {
  port = server.address().port;
  process.stdout.write(`PORT ${port}\n`);
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', command);
  rl.on('close', () => process.exit(0));
});
