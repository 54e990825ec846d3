// Attention for a new critical alert: the tab title counts open critical alerts, and a short beep
// (generated with WebAudio, no audio file) plays unless muted; the mute choice is kept in localStorage.

const MUTE_KEY = "tocsin.muted";

export function titleFor(base, openCritical) {
  return openCritical > 0 ? `(${openCritical}) ${base}` : base;
}

export class Attention {
  constructor(baseTitle) {
    this.baseTitle = baseTitle;
    this.cues = 0;
    this.beeps = 0;
    this.context = null;
    this.button = null;
    try {
      this.muted = localStorage.getItem(MUTE_KEY) === "1";
    } catch {
      this.muted = false;  // storage refused (private mode): not muted, not remembered
    }
  }

  bind(button) {
    this.button = button;
    button.addEventListener("click", () => this.setMuted(!this.muted));
    this.showMuted();
  }

  setMuted(muted) {
    this.muted = muted;
    try {
      localStorage.setItem(MUTE_KEY, muted ? "1" : "0");
    } catch { /* not remembered */ }
    this.showMuted();
  }

  showMuted() {
    if (!this.button) return;
    this.button.setAttribute("aria-pressed", String(this.muted));
    this.button.textContent = this.muted ? "Sound muted" : "Sound on";
  }

  setTitle(openCritical) {
    document.title = titleFor(this.baseTitle, openCritical);
  }

  cue() {
    this.cues += 1;
    if (!this.muted) this.beep();
  }

  beep() {
    try {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return;
      this.context = this.context || new Ctx();
      const ctx = this.context;
      if (ctx.state === "suspended") ctx.resume().catch(() => {});
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = "sine";
      osc.frequency.value = 880;
      const t = ctx.currentTime;
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.3, t + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.35);
      osc.connect(gain).connect(ctx.destination);
      osc.start(t);
      osc.stop(t + 0.4);
      this.beeps += 1;
    } catch (err) {
      console.warn("beep:", err);  // a browser without audio still shows the title cue
    }
  }
}
