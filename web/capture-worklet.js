/* capture-worklet.js - the microphone side of the browser room, run on the audio rendering thread.
 *
 * AudioWorkletProcessor "kameko-capture": takes the microphone at the context's rate (any rate),
 * mixes it to mono, low-passes and resamples it to 16 kHz with a windowed-sinc filter, converts to
 * int16 and posts one 20 ms frame (320 samples) at a time to the page: {pcm: ArrayBuffer, rms}.
 * The page (room.js, main thread) sends each frame over the WebSocket. Holds no page state; only
 * messages cross the port. Memory is fixed: one input ring and one frame being filled.
 */
const OUT_RATE = 16000;
const FRAME = 320; /* 20 ms at 16 kHz */
const ZEROS = 8; /* filter half-width in zero crossings of the output rate */
const RING = 8192; /* input history, power of two, far wider than the filter */
const PHASES = 256; /* fractional positions the filter is tabulated for */

class KamekoCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / OUT_RATE; /* input samples per output sample */
    this.fc = Math.min(1, OUT_RATE / sampleRate) * 0.92; /* cutoff, fraction of the input Nyquist */
    this.half = Math.ceil(ZEROS * Math.max(1, this.step)); /* filter half-width, input samples */
    this.table = new Array(PHASES); /* taps per phase, filled on first use */
    this.ring = new Float32Array(RING);
    this.n = 0; /* input samples written so far */
    this.pos = this.half; /* absolute input position of the next output sample */
    this.frame = new Int16Array(FRAME);
    this.fill = 0;
    this.sumsq = 0;
  }

  /* The filter taps for one fractional phase (p - floor(p), quantized to 1/PHASES), computed once
     and normalized to unity gain at DC. */
  taps(phase) {
    let t = this.table[phase];
    if (t) return t;
    const fc = this.fc, half = this.half, frac = phase / PHASES;
    t = new Float32Array(2 * half);
    let sum = 0;
    for (let k = 0; k < 2 * half; k++) {
      const d = frac + half - 1 - k; /* distance from the output position to input base - half + 1 + k */
      const x = Math.PI * fc * d;
      const sinc = d === 0 ? 1 : Math.sin(x) / x;
      const win = 0.5 + 0.5 * Math.cos((Math.PI * d) / half); /* Hann */
      t[k] = sinc * win;
      sum += t[k];
    }
    for (let k = 0; k < t.length; k++) t[k] /= sum;
    this.table[phase] = t;
    return t;
  }

  /* One output sample at fractional input position p: sum of x[i] * h(p - i) over the window. */
  sample(p) {
    if (this.step === 1) return this.ring[p & (RING - 1)];
    let base = Math.floor(p);
    let q = Math.round((p - base) * PHASES);
    if (q === PHASES) {
      base++;
      q = 0;
    }
    const t = this.taps(q);
    const first = base - this.half + 1;
    let acc = 0;
    for (let k = 0; k < t.length; k++) acc += this.ring[(first + k) & (RING - 1)] * t[k];
    return acc;
  }

  emit(v) {
    const s = Math.max(-1, Math.min(1, v));
    this.frame[this.fill++] = s < 0 ? s * 32768 : s * 32767;
    this.sumsq += s * s;
    if (this.fill === FRAME) {
      const rms = Math.sqrt(this.sumsq / FRAME);
      this.port.postMessage({ pcm: this.frame.buffer, rms }, [this.frame.buffer]);
      this.frame = new Int16Array(FRAME);
      this.fill = 0;
      this.sumsq = 0;
    }
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0 || !input[0]) return true;
    const len = input[0].length, chans = input.length;
    for (let k = 0; k < len; k++) {
      let v = 0;
      for (let c = 0; c < chans; c++) v += input[c][k];
      this.ring[this.n & (RING - 1)] = v / chans;
      this.n++;
    }
    /* an output needs input up to floor(pos) + half */
    while (Math.floor(this.pos) + this.half < this.n) {
      this.emit(this.sample(this.pos));
      this.pos += this.step;
    }
    return true;
  }
}

registerProcessor('kameko-capture', KamekoCapture);
