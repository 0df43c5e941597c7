'use strict';
// mls_gateway.cjs - what a test peer needs to play the DAVE voice gateway's part of MLS, shared by
// tests/peers/dave/peer.mjs (the interop test) and tests/peers/discord/voice_dave.js (the Discord
// peer): RFC 9420 presentation-language encoders, and the gateway as external sender 0 - a P-256
// key, its op-25 package, and external proposals (PublicMessage, SignWithLabel over
// FramedContentTBS, no membership tag). davey cannot play the gateway; see shared/PROTOCOLS.md.
// No npm dependencies (node:crypto only), so both peers can load it from their own folders.
const crypto = require('node:crypto');

// ---- TLS presentation language (RFC 9420 section 2.1) ----
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

// The gateway as MLS external sender 0 for the group of one voice channel.
class ExternalSender {
  constructor(channelId) {
    this.channelId = channelId;
    const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.key = privateKey;
    const jwk = publicKey.export({ format: 'jwk' });
    const pub = Buffer.concat([u8(4), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
    // op 25: ExternalSender { signature_key<V>; Credential (basic = 1, identity<V> = u64 0) }
    this.package = Buffer.concat([vec(pub), u16(1), vec(u64(0))]);
  }

  sign(label, content) {
    const sc = Buffer.concat([vec(Buffer.from('MLS 1.0 ' + label)), vec(content)]);
    return crypto.sign('sha256', sc, { key: this.key, dsaEncoding: 'der' });
  }

  // An MLSMessage(PublicMessage) carrying one proposal from external sender 0 at `epoch`.
  proposal(body, epoch) {
    const framed = Buffer.concat([
      vec(u64(this.channelId)), u64(epoch),
      u8(2), u32(0),        // sender: external, index 0
      vec(Buffer.alloc(0)), // authenticated_data
      u8(2),                // content_type: proposal
      body,
    ]);
    // FramedContentTBS: version, wire_format public_message, content (no GroupContext for
    // external senders)
    const tbs = Buffer.concat([u16(1), u16(1), framed]);
    return Buffer.concat([u16(1), u16(1), framed, vec(this.sign('FramedContentTBS', tbs))]);
  }

  add(keyPackage, epoch) { return this.proposal(Buffer.concat([u16(1), keyPackage]), epoch); }
  remove(leaf, epoch) { return this.proposal(Buffer.concat([u16(3), u32(leaf)]), epoch); }
}

module.exports = { varint, vec, u8, u16, u32, u64, ExternalSender };
