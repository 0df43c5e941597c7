// room_test.mjs - the browser room, end to end in headless Chromium against the real `kameko room`
// (run by tests/e2e/room_browser.sh: node room_test.mjs BUILD_DIR SRC_DIR).
//
// Three headless browsers, one per speaker, each with a fake microphone playing a WAV synthesized
// here with flite (Chromium loops the file, so each is padded with silence):
//   Bob    6 s of silence, then chatter not addressed to the persona ("Hello Alice. Did you see...").
//   Carol  joins muted; her track is one sentence looped (she is the barge-in).
//   Alice  joins after Bob's turn; 4.5 s of silence, then "Kameko, what can you do?".
// Test 1 (conversation): Bob's transcript shows in the pages and Kameko decides to stay silent (no
//   reply); Alice's transcript shows in every page, Kameko decides to speak, and her voice reaches
//   the pages (the player worklet reports samples played with non-zero RMS).
// Test 2 (barge-in): while Kameko answers Alice, Carol unmutes and talks; every page gets the flush
//   and its playback stops; the engine logs the interruption. The delays are printed (voice onset ->
//   playback silent in Carol's page; speech_start event -> silent; the engine's own timeline).
// Then Bob adds a persona with the cast picker (every page shows the new cast), Alice types a
// chat line (shown in Bob's page), and a broken save of kameko.lua (a copy) is refused with its
// file:line in the reloads list, then the fixed file is taken; the status shows the ping round
// trip; Carol leaves (the others' peer lists drop her) and joins again from the same page.
// Screenshots and logs go to BUILD_DIR/room_browser/. Exits 0 when every check passed, 1 otherwise;
// prints "SKIPPED" and exits 0 only when no Chromium is installed and CI is not set.
import fs from 'node:fs';
import path from 'node:path';
import * as L from './lib.mjs';

const [build, src] = process.argv.slice(2).map((p) => path.resolve(p));
if (!build || !src) {
  console.error('usage: node room_test.mjs BUILD_DIR SRC_DIR');
  process.exit(2);
}
const outDir = path.join(build, 'room_browser');
const TIMEOUT = Number(process.env.KMK_BROWSER_TIMEOUT_MS || 60000); /* per wait; generous for ASan */

let failures = 0;
const check = (ok, what) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures++;
  return ok;
};

const chromiumPath = L.findChromium();
if (!chromiumPath) {
  if (process.env.CI) {
    console.error('FAIL: no Chromium found (tools/deps.sh installs Debian\'s chromium package)');
    process.exit(1);
  }
  const where = process.env.KMK_CHROMIUM ? `KMK_CHROMIUM=${process.env.KMK_CHROMIUM}` : L.CHROMIUM_CANDIDATES.join(', ');
  console.log(`SKIPPED: no Chromium at ${where} (install Debian's chromium, ` +
    'e.g. with tools/deps.sh, or set KMK_CHROMIUM)');
  process.exit(0);
}

fs.rmSync(outDir, { recursive: true, force: true });
fs.mkdirSync(outDir, { recursive: true });

const transcriptOf = (who) => (evs) => evs.find((e) => e.type === 'transcript' && e.speaker === who);
const decisionFor = (who) => (evs) => evs.find((e) => e.type === 'decision' && e.trigger === 'transcript' && e.to === who);
const domLines = (page, who) => page.$$eval(`#transcript li[data-kind="transcript"][data-speaker="${who}"] .text`,
  (els) => els.map((e) => e.textContent));
// True once `who`'s line `text` is in the page's transcript (events reach each page on its own
// socket: another page having it does not mean this one has rendered it yet).
async function lineShown(page, who, text, timeoutMs = 10000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if ((await domLines(page, who)).includes(text)) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

// Waits until the page has played `samples` more agent samples than `from`; returns the loudest
// 100 ms RMS window seen meanwhile.
async function waitPlayed(page, from, samples, what) {
  let peak = 0;
  await L.waitStats(page, (s) => {
    if (s.rms > peak) peak = s.rms;
    return s.played - from >= samples;
  }, what, TIMEOUT);
  return peak;
}

async function main() {
  const tracks = {
    bob: L.synthTrack(outDir, 'bob', [{ silence: 6 }, { say: 'Hello Alice. Did you see the game last night?', voice: 'kal16' },
      { silence: 90 }]),
    alice: L.synthTrack(outDir, 'alice', [{ silence: 4.5 }, { say: 'Kameko, what can you do?', voice: 'slt' },
      { silence: 90 }]),
    carol: L.synthTrack(outDir, 'carol', [{ silence: 0.8 }, { say: 'Oh wait, I want to say something about the weather.', voice: 'awb' }]),
  };
  // the personas are copied so that the reload check can break one without touching the tree
  const personaDir = path.join(outDir, 'personas');
  fs.mkdirSync(personaDir);
  for (const f of fs.readdirSync(path.join(src, 'personas'))) {
    if (f.endsWith('.lua')) fs.copyFileSync(path.join(src, 'personas', f), path.join(personaDir, f));
  }
  const server = await L.startRoom({ build, src, outDir, personaDir });
  serverProc = server.proc;
  L.log(`room at ${server.url}; chromium ${chromiumPath}`);
  const browsers = [];
  const pages = {};
  try {
    // --- Test 1: two people, one talks to the persona ---------------------------------------
    browsers.push(await L.launchBrowser(chromiumPath, tracks.bob.file));
    browsers.push(await L.launchBrowser(chromiumPath, tracks.carol.file));
    pages.Bob = await L.joinRoom(browsers[0], server.url, 'Bob');
    pages.Carol = await L.joinRoom(browsers[1], server.url, 'Carol', { muted: true });
    L.log('Bob and Carol (muted) joined');

    const bobText = await L.waitEvents(pages.Bob, transcriptOf('Bob'), "Bob's transcript", TIMEOUT);
    L.log(`Bob said: "${bobText.text}"`);
    const bobDec = await L.waitEvents(pages.Bob, decisionFor('Bob'), "Kameko's decision on Bob's turn", TIMEOUT);
    check(!bobDec.should_speak, `Kameko stays silent for Bob's chatter (thought: "${bobDec.thought}")`);
    check(await lineShown(pages.Bob, 'Bob', bobText.text), "Bob's transcript is shown in Bob's page");
    check(await lineShown(pages.Carol, 'Bob', bobText.text), "Bob's transcript is shown in Carol's page");
    const card = await pages.Bob.$eval('#persona-kameko',
      (c) => ({ should: c.dataset.shouldSpeak, to: c.dataset.to, thought: c.querySelector('.thought span').textContent }));
    check(card.should === 'false' && card.to === 'Bob' && card.thought === bobDec.thought,
      `Bob's page shows Kameko's decision (should_speak ${card.should}, "${card.thought}")`);

    browsers.push(await L.launchBrowser(chromiumPath, tracks.alice.file));
    pages.Alice = await L.joinRoom(browsers[2], server.url, 'Alice');
    L.log('Alice joined');
    const aliceText = await L.waitEvents(pages.Alice, transcriptOf('Alice'), "Alice's transcript", TIMEOUT);
    L.log(`Alice said: "${aliceText.text}"`);
    check(/kameko/i.test(aliceText.text), `Alice's transcript names the persona ("${aliceText.text}")`);
    for (const who of ['Alice', 'Bob', 'Carol']) {
      check(await lineShown(pages[who], 'Alice', aliceText.text), `Alice's transcript is shown in ${who}'s page`);
    }
    const aliceDec = await L.waitEvents(pages.Alice, decisionFor('Alice'), "Kameko's decision on Alice's turn", TIMEOUT);
    check(aliceDec.should_speak === true, `Kameko decides to answer Alice ("${aliceDec.response}")`);
    const before = {};
    for (const who of ['Alice', 'Bob', 'Carol']) before[who] = (await L.stats(pages[who])).played;
    const start = await L.waitEvents(pages.Alice,
      (evs) => evs.find((e) => e.type === 'audio_out_start' && e.text === aliceDec.response), 'the reply starting', TIMEOUT);
    check(start.speaker === 'Kameko', `the reply's audio started (${start.provider}, speech end -> first audio ` +
      `${start.latency_ms && start.latency_ms.speech_end_to_audio} ms)`);
    for (const who of ['Alice', 'Bob', 'Carol']) {
      const peak = await waitPlayed(pages[who], before[who], 48000, `a second of the reply in ${who}'s page`);
      check(peak > 0.01, `Kameko's voice reached ${who}'s page (1 s played, RMS peak ${peak.toFixed(3)})`);
    }
    const aliceRow = await pages.Alice.$eval('#latency-table tbody tr[data-speaker="Alice"]', (tr) => [...tr.cells].map((c) => c.innerText.replace(/\s+/g, ' ')).join(' | '));
    check(aliceRow.includes('Kameko answered'), `the latency table shows Alice's turn (${aliceRow})`);
    await pages.Alice.screenshot({ path: path.join(outDir, 'room-alice.png') });
    await pages.Bob.screenshot({ path: path.join(outDir, 'room-bob.png') });

    // No reply to Bob: no agent audio between Bob's decision and Alice's arrival.
    const evsAll = await L.pageEvents(pages.Bob);
    const iBob = evsAll.indexOf(evsAll.find((e) => e.type === 'decision' && e.to === 'Bob' && e.trigger === 'transcript'));
    const iAlice = evsAll.findIndex((e) => e.type === 'join' && e.speaker === 'Alice');
    const between = evsAll.slice(iBob, iAlice < 0 ? undefined : iAlice).filter((e) => e.type === 'audio_out_start');
    check(iBob >= 0 && between.length === 0, `no agent reply after Bob's turn (${between.length} audio_out_start)`);

    // --- Test 2: barge-in ----------------------------------------------------------------------
    const flushesBefore = {};
    for (const who of ['Alice', 'Bob', 'Carol']) flushesBefore[who] = (await L.stats(pages[who])).flushes;
    await L.waitStats(pages.Carol, (x) => x.playing, "Carol's page playing the reply", TIMEOUT);
    await pages.Carol.click('#mute'); /* unmute: her looped sentence goes out from now on */
    L.log('Carol unmuted (barge-in)');
    const carolStats = await L.waitStats(pages.Carol, (s) => s.bargeIns.length > 0 && s.flushes > flushesBefore.Carol,
      "the flush in Carol's page", TIMEOUT);
    const rec = carolStats.bargeIns[carolStats.bargeIns.length - 1];
    check(rec.reason === 'barge_in', `the server flushed the page's audio (reason ${rec.reason})`);
    check(rec.wasPlaying, `Carol's page was playing when the flush came (dropped ${Math.round(rec.droppedMs)} ms buffered)`);
    for (const who of ['Alice', 'Bob']) {
      const s = await L.waitStats(pages[who], (x) => x.flushes > flushesBefore[who], `the flush in ${who}'s page`, TIMEOUT);
      check(s.bargeIns[s.bargeIns.length - 1].wasPlaying, `${who}'s page stopped the reply too`);
    }
    // the engine confirms (an early flush it did not confirm would let the held voice go on)
    const intr = await L.waitEvents(pages.Carol, (evs) => evs.find((e) => e.type === 'interrupted'), 'the interrupted event', TIMEOUT);
    check(intr.by === 'Carol', `the engine logged the interruption by ${intr.by} (heard: "${intr.heard}")`);
    // playback stays stopped from the last flush on: nothing played after it, unless the agent starts
    // a new reply (checked via audio_out_start)
    const p0 = {};
    for (const who of ['Alice', 'Bob', 'Carol']) {
      const s = await L.stats(pages[who]);
      p0[who] = s.bargeIns[s.bargeIns.length - 1].playedAtFlush; /* the player's count at the flush */
    }
    await new Promise((r) => setTimeout(r, 700));
    const evC = await L.pageEvents(pages.Carol);
    const lastStop = (await L.stats(pages.Carol)).bargeIns.pop().silentAt;
    const newReply = evC.some((e) => e.type === 'audio_out_start' && e._rx > lastStop);
    for (const who of ['Alice', 'Bob', 'Carol']) {
      const grew = (await L.stats(pages[who])).played - p0[who];
      check(newReply || grew <= 256, `${who}'s page stays silent after the flush (${grew} samples in 700 ms)`);
    }
    await pages.Carol.click('#mute'); /* mute again */
    await pages.Carol.screenshot({ path: path.join(outDir, 'room-carol-bargein.png') });

    const ss = evC.find((e) => e.type === 'speech_start' && e.speaker === 'Carol' && e._rx > rec.silentAt - 3000);
    const stop = evC.find((e) => e.type === 'playback_stop' && e._rx > rec.silentAt - 3000);

    if (process.env.KMK_BROWSER_DEBUG) {
      for (const e of evC.filter((x) => Math.abs(x._rx - rec.silentAt) < 1500)) {
        console.log(`  debug: ${(e._rx - rec.silentAt).toFixed(1)} ms ${e.type} ${e.speaker} t=${e.t}`);
      }
      console.log(`  debug: flush at ${(rec.flushAt - rec.silentAt).toFixed(1)}, onset ${(carolStats.lastVoiceOnset - rec.silentAt).toFixed(1)}`);
    }
    console.log('\nbarge-in figures (this run):');
    if (rec.voiceOnsetToSilentMs != null) {
      console.log(`  Carol's voice onset (first loud frame sent) -> playback silent in her page: ${rec.voiceOnsetToSilentMs.toFixed(0)} ms`);
    }
    if (ss) {
      const d = rec.silentAt - ss._rx;
      if (d >= 0) console.log(`  speech_start event received -> playback silent: ${d.toFixed(0)} ms`);
      else console.log(`  playback was silent ${(-d).toFixed(0)} ms before the speech_start event arrived (early flush)`);
      check(d < 2000, `playback stopped by Carol's speech_start (${d.toFixed(0)} ms after it; target 150 ms, bound 2000 ms here)`);
      if (stop) {
        console.log(`  engine timeline: speech_start t ${ss.t} -> playback_stop t ${stop.t}: ` +
          `${((stop.t - ss.t) * 1000).toFixed(0)} ms`);
      }
    } else {
      check(false, "Carol's speech_start event reached her page");
    }
    console.log(`  flush received -> player silent: ${rec.flushToSilentMs.toFixed(1)} ms; audio output base latency ` +
      `${(carolStats.baseLatencyMs || 0).toFixed(1)} ms (not included above)`);

    // Carol's words are still transcribed after the interruption
    const carolText = await L.waitEvents(pages.Bob, transcriptOf('Carol'), "Carol's transcript", TIMEOUT);
    check(await lineShown(pages.Bob, 'Carol', carolText.text), `Carol's words are shown in Bob's page ("${carolText.text}")`);

    // --- The cast picker and the chat box ------------------------------------------------------
    await pages.Bob.check('#cast-shopkeeper');
    await pages.Bob.click('#cast-form button[type="submit"]');
    const cast = await L.waitEvents(pages.Alice, (evs) => evs.find((e) => e.type === 'cast'), 'the cast event', TIMEOUT);
    check(cast.personas.length === 2, `the cast changed from Bob's page (now ${cast.personas.join(', ')})`);
    const cards = await pages.Alice.$$eval('.persona-card', (cs) => cs.map((c) => c.dataset.persona));
    check(cast.personas.every((n) => cards.includes(n)), `Alice's page shows a card per persona (${cards.join(', ')})`);
    // The picker follows the server's "personas" message, which is sent after the agent's "cast"
    // event; under load it can land a moment later, so wait for it rather than read once.
    const picked = await pages.Alice.waitForSelector('#cast-shopkeeper:checked', { timeout: 5000 })
      .then(() => true, () => false);
    check(picked, "Alice's cast picker shows the new cast");
    await pages.Alice.fill('#chat', 'Hello everyone, nice weather.');
    await pages.Alice.press('#chat', 'Enter');
    await pages.Bob.waitForSelector('#transcript li[data-kind="chat"][data-speaker="Alice"]', { timeout: TIMEOUT });
    check(true, "Alice's chat line is shown in Bob's page");

    // --- Persona reload results: a broken save is refused (file:line shown), a good one taken ------
    const kameko = path.join(personaDir, 'kameko.lua');
    const good = fs.readFileSync(kameko, 'utf8');
    const save = (text) => { /* like an editor that saves by rename */
      fs.writeFileSync(`${kameko}.tmp`, text);
      fs.renameSync(`${kameko}.tmp`, kameko);
    };
    const reloads = (evs) => evs.filter((e) => e.type === 'persona_reload');
    const n0 = reloads(await L.pageEvents(pages.Alice)).length;
    save(good.replace(/\n/, '\nlocal = broken(\n'));
    const bad = await L.waitEvents(pages.Alice, (evs) => reloads(evs).slice(n0).find((e) => e.ok === false),
      'a refused reload', TIMEOUT);
    const failLi = await pages.Alice.$eval('#reloads li.fail', (li) => li.textContent);
    check(/kameko\.lua:\d+/.test(bad.error || '') && failLi.includes(bad.error.slice(kameko.length - 'kameko.lua'.length)),
      `a broken save is refused and shown with its line (${failLi})`);
    save(good);
    await L.waitEvents(pages.Alice, (evs) => reloads(evs).slice(n0).find((e) => e.ok === true), 'a good reload', TIMEOUT);
    const okLi = await pages.Alice.$eval('#reloads li.ok', (li) => li.textContent);
    check(/reloaded in/.test(okLi), `the fixed file is reloaded and shown (${okLi})`);
    await new Promise((r) => setTimeout(r, 500));
    await new Promise((r) => setTimeout(r, 300));
    await pages.Bob.screenshot({ path: path.join(outDir, 'room-final.png'), fullPage: true });

    const rtt = (await L.stats(pages.Alice)).rttMs;
    check(rtt != null && rtt >= 0, `ping/pong: the page shows its round trip to the server (${rtt && rtt.toFixed(1)} ms)`);

    // --- Leave and join again ---------------------------------------------------------------------
    await pages.Carol.click('#leave');
    await L.waitEvents(pages.Alice, (evs) => evs.find((e) => e.type === 'leave' && e.speaker === 'Carol'),
      "Carol's leave", TIMEOUT);
    await pages.Alice.waitForFunction(() => !document.querySelector('#peers li[data-peer="Carol"]'), null, { timeout: TIMEOUT });
    check(await pages.Carol.isVisible('#join-form'), "Carol left: her page shows the join form, Alice's peers list drops her");
    await pages.Carol.click('#join-btn');
    await pages.Alice.waitForSelector('#peers li[data-peer="Carol"]', { timeout: TIMEOUT });
    check(await pages.Carol.isVisible('#room'), 'Carol joined again from the same page');

    for (const [who, page] of Object.entries(pages)) check(page.errors.length === 0, `no script errors in ${who}'s page ${page.errors.join('; ')}`);
  } finally {
    for (const b of browsers) await b.close().catch(() => {});
    const code = await L.stopProcess(server.proc);
    check(code === 0, `kameko room shut down cleanly (exit ${code})`);
    console.log(`output: ${outDir} (screenshots, kameko.log, room/events.jsonl)`);
  }
}

let serverProc = null;
const watchdog = setTimeout(() => {
  console.error('FAIL: the browser test took more than 240 s');
  serverProc?.kill('SIGKILL');
  process.exit(1);
}, 240000);
watchdog.unref();
try {
  await main();
} catch (err) {
  console.error(`FAIL: ${err.stack || err}`);
  failures++;
}
console.log(failures ? `\n${failures} check(s) failed` : '\nall browser room checks passed');
process.exit(failures ? 1 : 0);
