// worklets_test.mjs - the browser room's two AudioWorklet processors (web/capture-worklet.js,
// web/player-worklet.js) run in Node inside a stand-in for the AudioWorkletGlobalScope (sampleRate,
// currentTime, registerProcessor, a message port), so their DSP is checked without a browser:
//   capture: any input rate -> 16 kHz int16 frames of 320 samples; a 1 kHz tone keeps its level and
//            frequency; a 12 kHz tone (above the new Nyquist) is filtered out instead of aliasing.
//   player:  silent until the prebuffer is reached, plays the samples in order, a flush silences
//            the next render quantum at once, overflow drops the oldest audio, 44.1 kHz output
//            resamples (same duration), stats report what was played.
// Run by tests/e2e/room_worklets.sh (node worklets_test.mjs SRC_DIR). Exits 1 on a failed check.
import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';

const src = path.resolve(process.argv[2] || '.');
let failures = 0;
const check = (ok, what) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures++;
};

// Loads a worklet file in a fresh scope at `rate`; returns {make(options), posted, scope}.
function load(file, rate) {
  let Proc = null;
  const posted = [];
  class Port {
    constructor() {
      this.onmessage = null;
    }
    postMessage(m) {
      posted.push(m);
    }
  }
  const scope = {
    sampleRate: rate,
    currentTime: 0,
    Math, Float32Array, Int16Array, ArrayBuffer,
    AudioWorkletProcessor: class {
      constructor() {
        this.port = new Port();
      }
    },
    registerProcessor: (_name, cls) => {
      Proc = cls;
    },
  };
  vm.createContext(scope);
  vm.runInContext(fs.readFileSync(path.join(src, 'web', file), 'utf8'), scope, { filename: file });
  return { make: (options) => new Proc(options), posted, scope };
}

function tone(freq, rate, seconds, amp) {
  const n = Math.round(rate * seconds);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = amp * Math.sin((2 * Math.PI * freq * i) / rate);
  return x;
}

// Feeds x through the capture processor in 128-sample quanta; returns the int16 output.
function capture(x, rate) {
  const w = load('capture-worklet.js', rate);
  const p = w.make({});
  for (let off = 0; off + 128 <= x.length; off += 128) p.process([[x.subarray(off, off + 128)]]);
  const frames = w.posted.map((m) => new Int16Array(m.pcm));
  const out = new Int16Array(frames.length * 320);
  frames.forEach((f, i) => out.set(f, i * 320));
  return { frames, out };
}

const rms = (a, from = 0) => {
  let s = 0;
  for (let i = from; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s / Math.max(1, a.length - from));
};
// frequency by zero crossings
const freqOf = (a, rate, from) => {
  let z = 0;
  for (let i = from + 1; i < a.length; i++) if ((a[i - 1] < 0) !== (a[i] < 0)) z++;
  return (z / 2) * (rate / (a.length - from));
};

// --- capture ---
for (const rate of [48000, 44100, 16000]) {
  const { frames, out } = capture(tone(1000, rate, 1, 0.5), rate);
  check(frames.every((f) => f.length === 320), `capture @${rate}: every frame is 320 samples (20 ms at 16 kHz)`);
  const want = 16000 * 1;
  check(Math.abs(out.length - want) <= 640, `capture @${rate}: 1 s in -> ${out.length} samples out (want ~${want})`);
  const level = rms(out, 800) / 32768;
  check(Math.abs(level - 0.5 / Math.SQRT2) < 0.01, `capture @${rate}: a 1 kHz tone keeps its level (rms ${level.toFixed(4)})`);
  const f = freqOf(out, 16000, 800);
  check(Math.abs(f - 1000) < 10, `capture @${rate}: and its frequency (${f.toFixed(1)} Hz)`);
}
for (const rate of [48000, 44100]) {
  const { out } = capture(tone(12000, rate, 1, 0.5), rate);
  const level = rms(out, 800) / 32768;
  check(level < 0.01, `capture @${rate}: a 12 kHz tone is filtered out, not aliased to 4 kHz (rms ${level.toFixed(4)})`);
}
{
  const w = load('capture-worklet.js', 48000);
  const p = w.make({});
  const x = new Float32Array(128).fill(2); /* clipping input */
  for (let i = 0; i < 40; i++) p.process([[x, x]]);
  const last = new Int16Array(w.posted[w.posted.length - 1].pcm);
  check(last.every((v) => v === 32767), 'capture: out-of-range input clips to int16, stereo is mixed to mono');
  check(p.process([]) === true && p.process([[]]) === true, 'capture: no input (device gone) is not an error');
}

{
  /* a figure, not a check: CPU time of the capture path per second of 48 kHz microphone audio */
  const x = tone(440, 48000, 10, 0.3);
  const t0 = process.hrtime.bigint();
  capture(x, 48000);
  const msPerS = Number(process.hrtime.bigint() - t0) / 1e6 / 10;
  console.log(`     capture @48000: ${msPerS.toFixed(1)} ms of CPU per second of audio (Node, this machine)`);
}

// --- player ---
function player(rate, options) {
  const w = load('player-worklet.js', rate);
  const p = w.make({ processorOptions: options });
  const quantum = () => {
    const o = [new Float32Array(128), new Float32Array(128)];
    p.process([], [o]);
    w.scope.currentTime += 128 / rate;
    return o;
  };
  const push = (int16) => p.port.onmessage({ data: { type: 'pcm', pcm: int16.buffer } });
  return { w, p, quantum, push };
}
const ramp = (n, start) => Int16Array.from({ length: n }, (_, i) => (start + i) % 30000);

{
  const pl = player(48000, { prebufferMs: 60, maxMs: 1000 });
  pl.push(ramp(960, 1)); /* 20 ms: below the prebuffer */
  let o = pl.quantum();
  check(o[0].every((v) => v === 0), 'player: silent until 60 ms are buffered');
  pl.push(ramp(960, 961));
  pl.push(ramp(960, 1921));
  o = pl.quantum();
  check(pl.w.posted.some((m) => m.type === 'started'), 'player: reports started once the prebuffer is reached');
  const expect = Array.from({ length: 128 }, (_, i) => (1 + i) / 32768);
  check(o[0].every((v, i) => Math.abs(v - expect[i]) < 1e-9), 'player: plays the samples in order at 48 kHz');
  check(o[1].every((v, i) => v === o[0][i]), 'player: every output channel gets the voice');
  pl.p.port.onmessage({ data: { type: 'flush' } });
  const fl = pl.w.posted.find((m) => m.type === 'flushed');
  check(fl && fl.wasPlaying && fl.dropped === 2880 - 128 && fl.played === 128,
    `player: flush drops what is buffered (${fl && fl.dropped} samples) and says it was playing`);
  o = pl.quantum();
  check(o[0].every((v) => v === 0), 'player: the render quantum after a flush is silent');
  pl.push(ramp(2880, 10000)); /* the next reply */
  o = pl.quantum();
  check(Math.abs(o[0][0] - 10000 / 32768) < 1e-9, 'player: after a flush the next audio plays, none of the old');
  pl.p.port.onmessage({ data: { type: 'flush' } });
  pl.push(ramp(48000 * 2, 5)); /* 2 s into a 1 s buffer */
  const st = { ...pl.p };
  check(st.w - Math.floor(st.r) === 48000 && st.overflows === 1, 'player: overflow keeps the newest 1 s (drops the oldest)');
  o = pl.quantum();
  check(Math.abs(o[0][0] - ((5 + 48000) % 30000) / 32768) < 1e-9, 'player: and plays on from the oldest sample kept');
  for (let i = 0; i < 60; i++) pl.quantum(); /* stats come every 100 ms */
  const stats = pl.w.posted.filter((m) => m.type === 'stats').pop();
  check(stats && stats.played > 128 && stats.rms > 0 && stats.flushes === 2, 'player: stats report samples played, RMS, flushes');
}
{
  const pl = player(44100, { prebufferMs: 60, maxMs: 4000 });
  pl.push(ramp(48000, 0)); /* 1 s at 48 kHz */
  let n = 0;
  for (let i = 0; i < 400 && !pl.w.posted.some((m) => m.type === 'drained'); i++) {
    pl.quantum();
    n += 128;
  }
  check(Math.abs(n - 44100) <= 256, `player @44.1 kHz: 1 s of voice lasts ${n} output samples (resampled, ~44100)`);
}

console.log(failures ? `\n${failures} check(s) failed` : '\nall worklet checks passed');
process.exit(failures ? 1 : 0);
