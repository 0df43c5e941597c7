// lib.mjs - helpers for the browser room tests (room_test.mjs): fake-microphone WAVs synthesized
// with flite and padded with silence, the `kameko room` server as a child process, headless
// Debian Chromium (one browser per speaker: the fake-capture file is a browser-wide flag), and
// waiting on page state. Node (>= 18) only; nothing here talks to anything but loopback.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM_CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

export function findChromium() {
  if (process.env.KMK_CHROMIUM) return fs.existsSync(process.env.KMK_CHROMIUM) ? process.env.KMK_CHROMIUM : null;
  return CHROMIUM_CANDIDATES.find((p) => fs.existsSync(p)) || null;
}

export function log(...a) {
  const t = new Date().toISOString().slice(11, 23);
  console.log(`[${t}]`, ...a);
}

// --- WAV -------------------------------------------------------------------------------------

// Reads a PCM16 mono WAV (what flite writes): {rate, samples: Int16Array}.
export function readWav16(file) {
  const b = fs.readFileSync(file);
  if (b.toString('ascii', 0, 4) !== 'RIFF' || b.toString('ascii', 8, 12) !== 'WAVE') throw new Error(`${file}: not a WAV`);
  let off = 12, rate = 0, bits = 0, chans = 0;
  while (off + 8 <= b.length) {
    const id = b.toString('ascii', off, off + 4), size = b.readUInt32LE(off + 4);
    const body = off + 8;
    if (id === 'fmt ') {
      chans = b.readUInt16LE(body + 2);
      rate = b.readUInt32LE(body + 4);
      bits = b.readUInt16LE(body + 14);
    } else if (id === 'data') {
      if (bits !== 16 || chans !== 1) throw new Error(`${file}: want 16-bit mono, got ${bits}-bit x${chans}`);
      const n = Math.min(size, b.length - body) >> 1;
      const s = new Int16Array(n);
      for (let i = 0; i < n; i++) s[i] = b.readInt16LE(body + 2 * i);
      return { rate, samples: s };
    }
    off = body + size + (size & 1);
  }
  throw new Error(`${file}: no data chunk`);
}

export function writeWav16(file, rate, samples) {
  const b = Buffer.alloc(44 + samples.length * 2);
  b.write('RIFF', 0, 'ascii');
  b.writeUInt32LE(36 + samples.length * 2, 4);
  b.write('WAVEfmt ', 8, 'ascii');
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20);
  b.writeUInt16LE(1, 22);
  b.writeUInt32LE(rate, 24);
  b.writeUInt32LE(rate * 2, 28);
  b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34);
  b.write('data', 36, 'ascii');
  b.writeUInt32LE(samples.length * 2, 40);
  for (let i = 0; i < samples.length; i++) b.writeInt16LE(samples[i], 44 + 2 * i);
  fs.writeFileSync(file, b);
}

// Synthesizes a fake-microphone track: a list of parts, each {silence: seconds} or
// {say: text, voice}; flite voices are 16 kHz. Returns {file, seconds, speech: [[start, end]...]}.
export function synthTrack(dir, name, parts) {
  const rate = 16000;
  const chunks = [];
  const speech = [];
  let n = 0;
  for (const p of parts) {
    if (p.silence != null) {
      const s = new Int16Array(Math.round(p.silence * rate));
      chunks.push(s);
      n += s.length;
      continue;
    }
    const tmp = path.join(dir, `${name}.part${chunks.length}.wav`);
    const r = spawnSync('flite', ['-voice', p.voice || 'slt', '-t', p.say, '-o', tmp], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`flite failed (${r.error ? r.error.message : r.stderr}); is the flite package installed?`);
    const w = readWav16(tmp);
    fs.unlinkSync(tmp);
    if (w.rate !== rate) throw new Error(`flite voice ${p.voice} is ${w.rate} Hz, want ${rate}`);
    speech.push([n / rate, (n + w.samples.length) / rate]);
    chunks.push(w.samples);
    n += w.samples.length;
  }
  const all = new Int16Array(n);
  let o = 0;
  for (const c of chunks) {
    all.set(c, o);
    o += c.length;
  }
  const file = path.join(dir, `${name}.wav`);
  writeWav16(file, rate, all);
  return { file, seconds: n / rate, speech };
}

// --- the server ------------------------------------------------------------------------------

// Starts `kameko room` on a free loopback port with offline providers; resolves {url, proc, out}
// once it prints its URL. Its stdout/stderr go to <outDir>/kameko.log. personaDir (default: the
// source tree's personas/) is where the cast and the watched persona files come from.
export function startRoom({ build, src, outDir, personaDir, extraArgs = [], timeoutMs = 60000 }) {
  const bin = path.join(build, 'kameko');
  const env = { ...process.env };
  for (const k of ['GROQ_API_KEY', 'OPENROUTER_API_KEY', 'LLM_API_KEY', 'DISCORD_TOKEN', 'EDGE_TTS', 'EDGE_TTS_URL',
    'KMK_ROOM_TOKEN', 'KMK_ROOM_BIND']) delete env[k];
  const emptyEnv = path.join(outDir, 'empty.env');
  fs.writeFileSync(emptyEnv, '');
  const events = path.join(outDir, 'room');
  const args = ['--env', emptyEnv, '--set', 'KMK_ROOM_PORT=0', '--set', `KMK_PERSONA_DIR=${personaDir || path.join(src, 'personas')}`,
    '--set', `KMK_SCRIPTS_DIR=${path.join(src, 'scripts')}`,
    // a loaded 2-core machine running sanitizer builds can stall a Lua call past the 5 ms default
    '--set', 'KMK_LUA_BUDGET_MS=250', 'room', '--out', events, ...extraArgs];
  const logFile = path.join(outDir, 'kameko.log');
  const logFd = fs.openSync(logFile, 'w');
  log(`server: ${bin} ${args.join(' ')}`);
  const proc = spawn(bin, args, { cwd: src, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let seen = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`kameko room printed no URL in ${timeoutMs} ms; see ${logFile}`)), timeoutMs);
    const onData = (d) => {
      fs.writeSync(logFd, d);
      if (seen === null) return;
      seen += d.toString();
      const m = seen.match(/http:\/\/(127\.0\.0\.1|localhost):(\d+)\/?/);
      if (m && Number(m[2]) > 0) {
        seen = null;
        clearTimeout(timer);
        resolve({ url: `http://127.0.0.1:${m[2]}/`, proc, events: path.join(events, 'events.jsonl'), logFile });
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code, sig) => {
      clearTimeout(timer);
      if (seen !== null) reject(new Error(`kameko room exited (${code ?? sig}) before printing its URL; see ${logFile}`));
    });
  });
}

// SIGTERM, then SIGKILL after graceMs; resolves with the exit code (or signal name).
export function stopProcess(proc, graceMs = 15000) {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc.exitCode ?? proc.signalCode);
  return new Promise((resolve) => {
    const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
    proc.on('exit', (code, sig) => {
      clearTimeout(t);
      resolve(code ?? sig);
    });
    proc.kill('SIGTERM');
  });
}

// --- the browser -----------------------------------------------------------------------------

// One headless Chromium whose fake microphone plays `wav` (it loops: pad the track with silence).
export async function launchBrowser(executablePath, wav) {
  const args = [
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    `--use-file-for-fake-audio-capture=${wav}`,
    '--autoplay-policy=no-user-gesture-required',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    // only our own loopback page is loaded; the sandbox cannot start as root or in containers
    // without user namespaces (CI)
    '--no-sandbox',
  ];
  return chromium.launch({ executablePath, headless: true, args, timeout: 60000 });
}

// Opens the room in a new page and joins as `name`. Console errors are collected in page.errors.
export async function joinRoom(browser, url, name, { muted = false } = {}) {
  const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') page.errors.push(m.text());
  });
  await page.goto(url + (muted ? '?muted=1' : ''));
  if (await page.isVisible('#room')) throw new Error('the room panel is visible before joining');
  await page.fill('#name', name);
  await page.click('#join-btn');
  await page.waitForFunction(() => window.kameko && window.kameko.stats.joined && window.kameko.stats.micOk,
    null, { timeout: 30000 });
  if (await page.isVisible('#join') || !(await page.isVisible('#room'))) throw new Error('the join form still shows after joining');
  return page;
}

export const stats = (page) => page.evaluate(() => JSON.parse(JSON.stringify(window.kameko.stats)));
export const pageEvents = (page) => page.evaluate(() => window.kameko.events.slice());

// Waits until fn(events) (run in node against the page's event list) returns a truthy value.
export async function waitEvents(page, fn, what, timeoutMs) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const evs = await pageEvents(page);
    const v = fn(evs);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function waitStats(page, fn, what, timeoutMs) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = await stats(page);
    if (fn(s)) return s;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (stats ${JSON.stringify(s)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
