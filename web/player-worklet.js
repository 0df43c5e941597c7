/* player-worklet.js - the agent's voice in the browser room, run on the audio rendering thread.
 *
 * AudioWorkletProcessor "kameko-player": the page posts the server's frames (int16 LE mono 48 kHz,
 * 20 ms each) as {type:"pcm", pcm: ArrayBuffer}; they go into a jitter buffer that starts playing
 * once `prebufferMs` are queued and goes back to buffering on an underrun. {type:"flush"} empties it
 * at once (barge-in): the next render quantum is silent. Output at the context's rate (linear
 * interpolation when that is not 48 kHz).
 *
 * Reports to the page: {type:"started"} on the first sample of a burst, {type:"drained"} when the
 * buffer runs dry, {type:"flushed", dropped} after a flush, and {type:"stats"} about ten times a
 * second (samples played, RMS of what was played since the last report, buffered ms, times it ran dry).
 * Bounded: at most `maxMs` of audio is held; on overflow the oldest audio is dropped.
 */
const IN_RATE = 48000;

class KamekoPlayer extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = (options && options.processorOptions) || {};
    this.prebuffer = Math.round(((o.prebufferMs || 60) * IN_RATE) / 1000);
    this.cap = Math.round(((o.maxMs || 4000) * IN_RATE) / 1000);
    this.buf = new Float32Array(this.cap);
    this.w = 0; /* samples written (absolute) */
    this.r = 0; /* read position (absolute, fractional when resampling) */
    this.step = IN_RATE / sampleRate;
    this.playing = false;
    this.played = 0; /* input samples played since start */
    this.drains = 0;
    this.overflows = 0;
    this.flushes = 0;
    this.winSq = 0;
    this.winN = 0;
    this.peakRms = 0;
    this.lastReport = 0;
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  onMessage(m) {
    if (m.type === 'pcm') {
      const pcm = new Int16Array(m.pcm);
      for (let i = 0; i < pcm.length; i++) this.buf[(this.w + i) % this.cap] = pcm[i] / 32768;
      this.w += pcm.length;
      const excess = this.w - Math.floor(this.r) - this.cap;
      if (excess > 0) {
        this.r += excess; /* drop the oldest audio */
        this.overflows++;
      }
    } else if (m.type === 'flush') {
      const dropped = this.w - Math.floor(this.r);
      this.r = this.w;
      const was = this.playing;
      this.playing = false;
      this.flushes++;
      this.port.postMessage({ type: 'flushed', dropped, wasPlaying: was, played: this.played });
    }
  }

  process(_inputs, outputs) {
    const out = outputs[0];
    const ch0 = out[0];
    const n = ch0.length;
    const avail = () => this.w - Math.floor(this.r);
    if (!this.playing && avail() >= this.prebuffer) {
      this.playing = true;
      this.port.postMessage({ type: 'started' });
    }
    let i = 0;
    if (this.playing) {
      for (; i < n; i++) {
        const ri = Math.floor(this.r);
        if (ri + 1 >= this.w) break;
        const frac = this.r - ri;
        const a = this.buf[ri % this.cap], b = this.buf[(ri + 1) % this.cap];
        const v = frac === 0 ? a : a + (b - a) * frac;
        ch0[i] = v;
        this.winSq += v * v;
        this.winN++;
        this.r += this.step;
      }
      this.played += Math.round(i * this.step);
      if (i < n) {
        this.playing = false;
        this.drains++;
        this.port.postMessage({ type: 'drained' });
      }
    }
    for (; i < n; i++) ch0[i] = 0;
    for (let c = 1; c < out.length; c++) out[c].set(ch0);

    if (currentTime - this.lastReport >= 0.1) {
      this.lastReport = currentTime;
      const rms = this.winN ? Math.sqrt(this.winSq / this.winN) : 0;
      if (rms > this.peakRms) this.peakRms = rms;
      this.port.postMessage({
        type: 'stats',
        played: this.played,
        rms,
        peakRms: this.peakRms,
        bufferedMs: (avail() * 1000) / IN_RATE,
        playing: this.playing,
        drains: this.drains,
        overflows: this.overflows,
        flushes: this.flushes,
      });
      this.winSq = 0;
      this.winN = 0;
    }
    return true;
  }
}

registerProcessor('kameko-player', KamekoPlayer);
