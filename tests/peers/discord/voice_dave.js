'use strict';
// voice_dave.js - the voice gateway's DAVE part for voice.js: the MLS external sender
// (../common/mls_gateway.cjs: op 25 package, external Add proposals) and the peer's users as
// @snazzah/davey sessions that join the bot's group by its Welcome, encrypt their Opus frames and
// decrypt the bot's. davey cannot play the gateway, so the peer does (see shared/PROTOCOLS.md).
const { DAVESession, MediaType } = require('@snazzah/davey');

const { vec, u8, u16, ExternalSender } = require('../common/mls_gateway.cjs');

const SILENCE = Buffer.from([0xf8, 0xff, 0xfe]);

class DaveGateway {
  constructor(channelId, botId) {
    this.channelId = channelId;
    this.botId = botId;
    this.sender = new ExternalSender(channelId);
    this.externalSender = this.sender.package; // op 25
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

  // op 27 payload: append Adds for these key packages at `epoch`
  addProposals(keyPackages, epoch) {
    const list = Buffer.concat(keyPackages.map((kp) => this.sender.add(kp, epoch)));
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
