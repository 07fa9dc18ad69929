/**
 * The console's alarm sound, made by the Web Audio API (no file to fetch). Browsers let a page
 * play sound only after a person's gesture: the login click creates and resumes the one
 * AudioContext, and the console keeps it. `start(pattern)` sounds until `stop()`.
 */
let ctx: AudioContext | null = null;
let timer: number | null = null;
let current: Pattern | null = null;

export type Pattern = 'alarm' | 'duress' | 'lost';

/** Call from a click or key handler (the login button): creates and unlocks the audio. */
export function unlockAudio(): void {
  try {
    ctx ??= new AudioContext();
    void ctx.resume();
  } catch {
    ctx = null;
  }
}

export function audioState(): string {
  return ctx ? ctx.state : 'none';
}

function beep(freq: number, ms: number): void {
  if (!ctx) return;
  const osc = ctx.createOscillator();
  const gain = ctx.createGain();
  osc.type = 'square';
  osc.frequency.value = freq;
  gain.gain.value = 0.15;
  osc.connect(gain).connect(ctx.destination);
  osc.start();
  osc.stop(ctx.currentTime + ms / 1000);
}

const PATTERNS: Record<Pattern, { every: number; play: () => void }> = {
  alarm: { every: 1200, play: () => (beep(880, 250), setTimeout(() => beep(660, 250), 300)) },
  duress: { every: 700, play: () => (beep(1100, 200), setTimeout(() => beep(1100, 200), 300)) },
  lost: { every: 3000, play: () => beep(440, 600) },
};

/** Sound `pattern` until stop() (a louder pattern replaces a softer one). */
export function startSound(pattern: Pattern): void {
  if (current === pattern) return;
  stopSound();
  current = pattern;
  const p = PATTERNS[pattern];
  p.play();
  timer = window.setInterval(p.play, p.every);
}

export function stopSound(): void {
  if (timer !== null) window.clearInterval(timer);
  timer = null;
  current = null;
}

/** What is sounding now (the e2e tests read it from the page's data-sound attribute). */
export function sounding(): Pattern | null {
  return current;
}
