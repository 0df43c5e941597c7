'use strict';
// voice_dave.js - the voice gateway's DAVE part for voice.js: the MLS external sender (a P-256
// key; op 25 package; external Add proposals signed with SignWithLabel over FramedContentTBS, no
// membership tag) and the peer's users as @snazzah/davey sessions that join the bot's group by
// its Welcome, encrypt their Opus frames and decrypt the bot's. davey cannot play the gateway, so
// this file does (see shared/PROTOCOLS.md, DAVE).
const crypto = require('node:crypto');
const { DAVESession, MediaType } = require('@snazzah/davey');

function varint(n) {
  if (n < 0x40) return Buffer.from([n]);
  if (n < 0x4000) return Buffer.from([0x40 | (n >> 8), n & 0xff]);
  const b = Buffer.alloc(4);
  b.writeUInt32BE((0x80000000 | n) >>> 0);
  return b;
}
const vec = (b) => Buffer.concat([varint(b.length), b]);
const u8 = (n) => Buffer.from([n]);
const u16 = (n) => { const b = Buffer.alloc(2); b.writeUInt16BE(n); return b; };
const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
const u64 = (n) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b; };

const SILENCE = Buffer.from([0xf8, 0xff, 0xfe]);

class DaveGateway {
  constructor(channelId, botId) {
    this.channelId = channelId;
    this.botId = botId;
    const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.key = privateKey;
    const jwk = publicKey.export({ format: 'jwk' });
    const pub = Buffer.concat([u8(4), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
    // ExternalSender { signature_key<V>; Credential (basic = 1, identity<V> = u64 0) }
    this.externalSender = Buffer.concat([vec(pub), u16(1), vec(u64(0))]);
    this.users = new Map(); // id -> DAVESession
    this.kps = new Map();   // id -> its key package (sent in the Add proposal)
    this.transition = 0;
    this.ready = false;
  }

  addUser(id) {
    if (this.users.has(id)) return this.users.get(id);
    const s = new DAVESession(1, id, this.channelId);
    s.setExternalSender(this.externalSender);
    this.kps.set(id, s.getSerializedKeyPackage());
    this.users.set(id, s);
    return s;
  }

  sign(label, content) {
    const sc = Buffer.concat([vec(Buffer.from('MLS 1.0 ' + label)), vec(content)]);
    return crypto.sign('sha256', sc, { key: this.key, dsaEncoding: 'der' });
  }

  proposal(body, epoch) {
    const framed = Buffer.concat([
      vec(u64(this.channelId)), u64(epoch),
      u8(2), u32(0),        // sender: external, index 0
      vec(Buffer.alloc(0)), // authenticated_data
      u8(2),                // content_type: proposal
      body,
    ]);
    const tbs = Buffer.concat([u16(1), u16(1), framed]); // version, wire_format public_message
    return Buffer.concat([u16(1), u16(1), framed, vec(this.sign('FramedContentTBS', tbs))]);
  }

  // op 27 payload: append Adds for these key packages at `epoch`
  addProposals(keyPackages, epoch) {
    const list = Buffer.concat(keyPackages.map((kp) => this.proposal(Buffer.concat([u16(1), kp]), epoch)));
    return Buffer.concat([u8(0), vec(list)]);
  }

  // op 28 from the bot: commit MLSMessage | optional Welcome (bare: cipher suite u16 = 2 first);
  // the commit's length is not framed, so try each offset where 00 02 could start the Welcome.
  onCommitWelcome(payload) {
    const joiners = [...this.users.values()].filter((s) => !s.ready);
    const members = [...this.users.values()].filter((s) => s.ready);
    let commit = payload;
    let welcome = null;
    for (let i = 4; i + 6 <= payload.length && joiners.length; i++) {
      if (payload[i] !== 0 || payload[i + 1] !== 2) continue;
      try {
        joiners[0].processWelcome(payload.subarray(i));
        commit = payload.subarray(0, i);
        welcome = payload.subarray(i);
        break;
      } catch (e) { if (process.env.KMK_PEER_DEBUG) process.stderr.write('welcome@' + i + ': ' + e.message + '\n'); }
    }
    for (const s of joiners.slice(welcome ? 1 : 0)) if (welcome) s.processWelcome(welcome);
    for (const s of members) s.processCommit(commit);
    this.transition++;
    return { commit, welcome, transition: this.transition };
  }

  encrypt(userId, opus) {
    const s = this.users.get(userId);
    if (!s || !s.ready || SILENCE.equals(opus)) return opus;
    return s.encryptOpus(opus);
  }

  // the bot's frame, decrypted by any member: Buffer or null
  decrypt(frame) {
    if (SILENCE.equals(frame)) return frame;
    for (const s of this.users.values()) {
      if (!s.ready) continue;
      try { return s.decrypt(this.botId, MediaType.AUDIO, frame); } catch (e) { return null; }
    }
    return null;
  }

  epoch() {
    for (const s of this.users.values()) if (s.ready) return Number(s.epoch);
    return 0;
  }

  privacyCode() {
    for (const s of this.users.values()) if (s.ready) return s.voicePrivacyCode;
    return '';
  }
}

module.exports = { DaveGateway };
