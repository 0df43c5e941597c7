// peer.mjs - loopback DAVE interop peer for Kameko's C implementation.
//
// It plays the Discord voice gateway's part that @snazzah/davey cannot: the MLS external sender
// (a P-256 key, the op-25 external sender package, external Add proposals signed with
// SignWithLabel over FramedContentTBS). Two davey clients (users 1001 and 1002) and the C client
// (user 1003, driving this script over stdin/stdout) form a group: 1001 commits the Add
// proposals, 1002 and the C client join by the Welcome, then Opus frames go both ways and the
// epoch authenticators and voice privacy codes are compared.
//
// Line protocol (one message per line, hex payloads; EXTERNAL, PROPOSALS*, COMMIT* and WELCOME
// carry whole binary voice-gateway frames: u16 seq | u8 op | payload). The C side speaks first:
//   C -> peer  KP <key package>                    our bare KeyPackage (op 26 payload)
//   peer -> C  EXTERNAL <external sender package>  op 25 payload
//   peer -> C  PROPOSALS <proposals>               op 27 payload body (vector of MLSMessages)
//   peer -> C  COMMIT <commit>                     the commit davey made from them (op 29 body)
//   peer -> C  WELCOME <welcome>                   op 30 payload without the transition id
//   C -> peer  JOINED <epoch authenticator> <code>
//   peer -> C  DECRYPT <user id> <frame>           a davey-encrypted Opus frame
//   C -> peer  PLAIN <frame>
//   peer -> C  ENCRYPT <frame>                     C encrypts this Opus frame as user 1003
//   C -> peer  CIPHER <frame>
//   then a second epoch: 1004 joins and 1002 is removed, by proposals and a davey commit
//   peer -> C  PROPOSALS2 <proposals>              C stores them (op 27)
//   peer -> C  COMMIT2 <commit>                    C processes it (op 29)
//   C -> peer  EPOCH <epoch> <epoch authenticator> <code>
//   DECRYPT / ENCRYPT rounds again with 1001 and 1004
//   peer -> C  DONE | FAIL <reason>
import { DAVESession, ProposalsOperationType, MediaType } from '@snazzah/davey';
import crypto from 'node:crypto';
import readline from 'node:readline';
import mls from '../common/mls_gateway.cjs';

const CHANNEL = '1234567890123456789';
const USERS = { a: '1001', b: '1002', c: '1003' };

// ---- MLS encoders and the gateway as external sender 0 (shared with the Discord peer) ----
const { vec, u8, u16, ExternalSender } = mls;
let seq = 0;
const gw = (op, payload) => { const h = Buffer.alloc(3); h.writeUInt16BE(++seq); h[2] = op; return Buffer.concat([h, payload]); };
const gateway = new ExternalSender(CHANNEL);
const externalSenderPackage = gateway.package;
const externalAdd = (keyPackage, epoch) => gateway.add(keyPackage, epoch);
const externalRemove = (leaf, epoch) => gateway.remove(leaf, epoch);

// ---- line I/O with the C client ----
const rl = readline.createInterface({ input: process.stdin });
const lines = [];
let waiter = null;
rl.on('line', (l) => { if (waiter) { const w = waiter; waiter = null; w(l); } else lines.push(l); });
const next = () => lines.length ? Promise.resolve(lines.shift()) : new Promise((r) => { waiter = r; });
const send = (s) => process.stdout.write(s + '\n');
const log = (s) => process.stderr.write('peer: ' + s + '\n');
function fail(reason) { send('FAIL ' + reason); log('FAIL ' + reason); process.exit(1); }
async function expect(tag) {
  const l = await next();
  const parts = l.trim().split(' ');
  if (parts[0] !== tag) fail(`expected ${tag}, got ${l.slice(0, 80)}`);
  return parts.slice(1);
}

// Scenario "create": the C client creates the group and commits the gateway's Adds of two davey
// clients, which join by the C client's Welcome.
//   peer -> C  EXTERNAL <op 25 frame>
//   peer -> C  PROPOSALS <op 27 frame>             Add(1001), Add(1002) at epoch 0
//   C -> peer  COMMITWELCOME <op 28 frame>          u8 28 | commit MLSMessage | Welcome
//   peer -> C  COMMIT <op 29 frame>                the gateway announces C's commit
//   C -> peer  EPOCH <epoch> <epoch authenticator> <code>
//   DECRYPT / ENCRYPT rounds with 1001 and 1002, then DONE
async function createScenario() {
  send('EXTERNAL ' + gw(25, externalSenderPackage).toString('hex'));
  const a = new DAVESession(1, USERS.a, CHANNEL);
  const b = new DAVESession(1, USERS.b, CHANNEL);
  a.setExternalSender(externalSenderPackage);
  b.setExternalSender(externalSenderPackage);
  const props = Buffer.concat([externalAdd(a.getSerializedKeyPackage(), 0), externalAdd(b.getSerializedKeyPackage(), 0)]);
  send('PROPOSALS ' + gw(27, Buffer.concat([u8(0), vec(props)])).toString('hex'));
  const [cwHex, commitLenStr] = await expect('COMMITWELCOME');
  const cw = Buffer.from(cwHex, 'hex');
  if (cw[0] !== 28) fail('op 28 expected');
  const commitLen = Number(commitLenStr);
  const commit = cw.subarray(1, 1 + commitLen), welcome = cw.subarray(1 + commitLen);
  a.processWelcome(welcome);
  b.processWelcome(welcome);
  log(`davey joined C's group: epoch ${a.epoch}, users ${a.getUserIds().join(',')}`);
  send('COMMIT ' + gw(29, Buffer.concat([u16(1), commit])).toString('hex'));
  const [ep, auth, code] = await expect('EPOCH');
  if (BigInt(ep) !== a.epoch) fail(`C at epoch ${ep}, davey at ${a.epoch}`);
  for (const s of [a, b]) {
    if (auth !== s.getEpochAuthenticator().toString('hex')) fail(`epoch authenticator differs for ${s.userId}`);
    if (code !== s.voicePrivacyCode) fail(`voice privacy code differs for ${s.userId}`);
  }
  log(`epoch authenticator and voice privacy code ${code} agree`);
  for (let i = 0; i < 10; i++) {
    const plain = crypto.randomBytes(40 + i);
    const sender = i % 2 ? b : a;
    send(`DECRYPT ${sender.userId} ${sender.encryptOpus(plain).toString('hex')}`);
    if ((await expect('PLAIN'))[0] !== plain.toString('hex')) fail(`frame ${i} from ${sender.userId} wrong at C`);
    send(`ENCRYPT ${plain.toString('hex')}`);
    const enc = Buffer.from((await expect('CIPHER'))[0], 'hex');
    for (const s of [a, b])
      if (!s.decrypt(USERS.c, MediaType.AUDIO, enc).equals(plain)) fail(`frame ${i} from C wrong at ${s.userId}`);
  }
  send('DONE');
  process.exit(0);
}

try {
  if (process.argv[2] === 'create') await createScenario();
  const [kpHex] = await expect('KP');
  const cKeyPackage = Buffer.from(kpHex, 'hex');

  const a = new DAVESession(1, USERS.a, CHANNEL);
  const b = new DAVESession(1, USERS.b, CHANNEL);
  a.setExternalSender(externalSenderPackage);
  b.setExternalSender(externalSenderPackage);
  const bKeyPackage = b.getSerializedKeyPackage();
  a.getSerializedKeyPackage(); // A starts the group as its only member

  // op 27 (append): a vector of proposal MLSMessages
  const proposals = Buffer.concat([externalAdd(bKeyPackage, 0), externalAdd(cKeyPackage, 0)]);
  const result = a.processProposals(ProposalsOperationType.APPEND, vec(proposals),
    [USERS.a, USERS.b, USERS.c]);
  if (!result.commit || !result.welcome) fail('davey produced no commit/welcome');
  a.processCommit(result.commit);
  b.processWelcome(result.welcome);
  log(`group epoch ${a.epoch}, users ${a.getUserIds().join(',')}`);

  send('EXTERNAL ' + gw(25, externalSenderPackage).toString('hex'));
  send('PROPOSALS ' + gw(27, Buffer.concat([u8(0), vec(proposals)])).toString('hex'));
  send('COMMIT ' + gw(29, Buffer.concat([u16(1), result.commit])).toString('hex'));
  send('WELCOME ' + gw(30, Buffer.concat([u16(1), result.welcome])).toString('hex'));
  const [authHex, code] = await expect('JOINED');
  const authA = a.getEpochAuthenticator().toString('hex');
  const authB = b.getEpochAuthenticator().toString('hex');
  if (authA !== authB) fail('davey clients disagree on the epoch authenticator');
  if (authHex !== authA) fail(`epoch authenticator differs: C ${authHex} davey ${authA}`);
  if (code !== a.voicePrivacyCode || code !== b.voicePrivacyCode)
    fail(`voice privacy code differs: C ${code} davey ${a.voicePrivacyCode}/${b.voicePrivacyCode}`);
  log(`epoch authenticator and voice privacy code ${code} agree`);

  // davey -> C
  for (let i = 0; i < 20; i++) {
    const plain = crypto.randomBytes(20 + i * 7);
    const sender = i % 2 ? b : a;
    const enc = sender.encryptOpus(plain);
    if (enc.equals(plain)) fail('davey did not encrypt (session not ready?)');
    send(`DECRYPT ${sender.userId} ${enc.toString('hex')}`);
    const [got] = await expect('PLAIN');
    if (got !== plain.toString('hex')) fail(`frame ${i} from ${sender.userId} decrypted wrongly by C`);
  }
  // silence passes through
  send(`DECRYPT ${USERS.a} ${a.encryptOpus(Buffer.from([0xf8, 0xff, 0xfe])).toString('hex')}`);
  if ((await expect('PLAIN'))[0] !== 'f8fffe') fail('silence frame not passed through by C');
  // C -> davey
  for (let i = 0; i < 20; i++) {
    const plain = crypto.randomBytes(10 + i * 11);
    send(`ENCRYPT ${plain.toString('hex')}`);
    const [encHex] = await expect('CIPHER');
    const enc = Buffer.from(encHex, 'hex');
    for (const s of [a, b]) {
      const dec = s.decrypt(USERS.c, MediaType.AUDIO, enc);
      if (!dec.equals(plain)) fail(`frame ${i} from C not decrypted by ${s.userId}`);
    }
  }
  const stats = a.getDecryptionStats(USERS.c);
  log(`davey decryption stats for C: ${JSON.stringify(stats)}`);

  // ---- epoch 2: add 1004, remove 1002, committed by 1001 ----
  const d = new DAVESession(1, '1004', CHANNEL);
  d.setExternalSender(externalSenderPackage);
  const dKeyPackage = d.getSerializedKeyPackage();
  const epoch1 = Number(a.epoch);
  const props2 = Buffer.concat([externalAdd(dKeyPackage, epoch1), externalRemove(b.ownLeafIndex, epoch1)]);
  send('PROPOSALS2 ' + gw(27, Buffer.concat([u8(0), vec(props2)])).toString('hex'));
  const r2 = a.processProposals(ProposalsOperationType.APPEND, vec(props2), [USERS.a, USERS.c, '1004']);
  if (!r2.commit || !r2.welcome) fail('davey produced no commit/welcome for epoch 2');
  a.processCommit(r2.commit);
  d.processWelcome(r2.welcome);
  send('COMMIT2 ' + gw(29, Buffer.concat([u16(2), r2.commit])).toString('hex'));
  const [ep2, auth2, code2] = await expect('EPOCH');
  if (BigInt(ep2) !== a.epoch) fail(`C is at epoch ${ep2}, davey at ${a.epoch}`);
  if (auth2 !== a.getEpochAuthenticator().toString('hex') || auth2 !== d.getEpochAuthenticator().toString('hex'))
    fail('epoch 2 authenticator differs');
  if (code2 !== a.voicePrivacyCode || code2 !== d.voicePrivacyCode) fail('epoch 2 voice privacy code differs');
  log(`epoch ${ep2}: users ${a.getUserIds().join(',')}; authenticator and code ${code2} agree`);
  for (let i = 0; i < 10; i++) {
    const plain = crypto.randomBytes(30 + i);
    const sender = i % 2 ? d : a;
    send(`DECRYPT ${sender.userId} ${sender.encryptOpus(plain).toString('hex')}`);
    const [got] = await expect('PLAIN');
    if (got !== plain.toString('hex')) fail(`epoch 2 frame ${i} from ${sender.userId} decrypted wrongly by C`);
    send(`ENCRYPT ${plain.toString('hex')}`);
    const enc = Buffer.from((await expect('CIPHER'))[0], 'hex');
    for (const s of [a, d])
      if (!s.decrypt(USERS.c, MediaType.AUDIO, enc).equals(plain)) fail(`epoch 2 frame ${i} from C not decrypted by ${s.userId}`);
  }
  send('DONE');
  process.exit(0);
} catch (e) {
  fail(String(e && e.stack || e).replace(/\n/g, ' | '));
}
