// The comparison player: one transport drives 2 to 4 videos and keeps them within a frame of each other.
//
// There is one clock: a leading video (the one whose sound is on, else the longest). During playback a
// requestAnimationFrame loop compares every other video with it: a small drift is absorbed by running the
// follower slightly fast or slow for a moment (invisible, and no stutter), a drift of about a frame or more by
// seeking the follower. Every seek or frame step sets all videos to the same time and waits for all of them to
// have shown it before the transport says it is done. A video shorter than the timeline holds its last frame.
"use strict";

(() => {
  // Below a quarter of a frame nobody can see a difference; chasing it would only make the rates jitter.
  const DRIFT_IGNORED = 0.008;
  // A follower may run this much fast or slow while it catches up (less when it is heard: tempo changes are audible)...
  const NUDGE_LIMIT = 0.12;
  const NUDGE_LIMIT_HEARD = 0.04;
  // ...aiming to close its gap within this many seconds.
  const NUDGE_HORIZON = 0.4;
  // Seeks land just after the start of a frame: landing exactly on it can round to the previous frame.
  const LAND_INSIDE = 0.0005;
  // A seek that never reports back (a broken file, a dropped connection) must not freeze the transport.
  const SEEK_TIMEOUT_MS = 5000;
  // A video that has had too little data for this long, outside of a seek, is buffering.
  const STALL_MS = 300;
  const HAVE_FUTURE_DATA = 3;

  const players = [];
  let activePlayer = null;

  class ComparePlayer {
    constructor(root) {
      this.root = root;
      this.fps = Number(root.dataset.fps) || 24;
      this.frame = 1 / this.fps;
      this.videos = [...root.querySelectorAll("[data-compare-video]")];
      this.playButton = root.querySelector("[data-transport-play]");
      this.seekInput = root.querySelector("[data-transport-seek]");
      this.clock = root.querySelector("[data-transport-clock]");
      this.total = root.querySelector("[data-transport-total]");
      this.loopButton = root.querySelector("[data-transport-loop]");
      this.speedSelect = root.querySelector("[data-transport-speed]");

      this.wantPlaying = false; // what the person asked for; the videos may still be seeking or buffering
      this.running = false; // the drift loop is on: every video that should play is playing
      this.op = 0; // each command takes a new number, so a slow seek cannot finish a command that was replaced
      this.position = 0;
      this.rate = Number(this.speedSelect?.value) || 1;
      this.loop = false;
      this.scrubbing = false;
      this.pendingScrub = null;
      this.scrubBusy = false;
      this.seekLead = 0.05; // how far ahead a playing follower is sent: it keeps running while the seek completes
      this.stalledSince = new Map();
      this.stats = { jumps: 0, maxSpread: 0 };
      this.tick = this.tick.bind(this);

      this.bind();
      this.showDuration();
      this.render(0);
    }

    // ---- time helpers ----

    end(video) {
      return Number.isFinite(video.duration) && video.duration > 0 ? video.duration : Number(video.dataset.duration) || 0;
    }

    get duration() {
      return Math.max(0, ...this.videos.map((video) => this.end(video)));
    }

    get longest() {
      return this.videos.reduce((best, video) => (this.end(video) > this.end(best) ? video : best), this.videos[0]);
    }

    // The heard video leads, so its sound is never cut by a correction; past its end the longest leads.
    leader(time) {
      const heard = this.videos.find((video) => !video.muted && time < this.end(video) - this.frame);
      return heard || this.longest;
    }

    frameAt(time) {
      return Math.floor(time * this.fps + 0.01);
    }

    frameStart(index) {
      return Math.min(Math.max(0, index) / this.fps + LAND_INSIDE, this.duration);
    }

    snap(time) {
      return this.frameStart(this.frameAt(Math.min(Math.max(0, time), this.duration)));
    }

    format(time) {
      const index = this.frameAt(Math.max(0, time));
      const seconds = Math.floor(index / this.fps);
      const frames = index - seconds * this.fps;
      const pad = (n) => String(n).padStart(2, "0");
      return `${Math.floor(seconds / 60)}:${pad(seconds % 60)}.${pad(frames)}`;
    }

    // "3", "3.5" and "3,5" are seconds; "0:03.12" (or "0:03:12") is minutes, seconds and frames.
    parse(text) {
      const value = text.trim().replace(",", ".");
      if (/^\d+(\.\d*)?$|^\.\d+$/.test(value)) return Number(value);
      const parts = value.match(/^(\d+):(\d{1,2})(?:[.:](\d{1,2}))?$/);
      if (!parts) return null;
      const [minutes, seconds, frames] = [Number(parts[1]), Number(parts[2]), Number(parts[3] || 0)];
      if (seconds >= 60 || frames >= this.fps) return null;
      return minutes * 60 + seconds + frames / this.fps;
    }

    // ---- commands ----

    async play() {
      const op = ++this.op;
      this.wantPlaying = true;
      this.running = false;
      let time = this.position;
      if (time >= this.duration - this.frame / 2) time = 0; // Play at the end starts over, as in every player
      this.position = time;
      this.setState("starting");
      if (!this.alignedAt(time)) await this.seekAll(time);
      if (op !== this.op) return;
      const starting = this.videos.filter((video) => time < this.end(video) - this.frame / 2);
      if (starting.some((video) => video.readyState < HAVE_FUTURE_DATA)) {
        this.setState("buffering");
        await Promise.all(starting.map((video) => whenCanPlay(video)));
        if (op !== this.op) return;
      }
      this.videos.forEach((video) => this.setRate(video, this.rate));
      await Promise.all(starting.map((video) => this.startVideo(video)));
      if (op !== this.op) return;
      this.running = true;
      this.stalledSince.clear();
      this.setState("playing");
      requestAnimationFrame(this.tick);
    }

    async startVideo(video) {
      try {
        await video.play();
      } catch (error) {
        // Sound needs a click: keep the picture in step rather than stop every video.
        if (error.name === "NotAllowedError" && !video.muted) {
          video.muted = true;
          await video.play().catch(() => {});
        }
        // An AbortError means a pause or seek came first, which is then the current command.
      }
    }

    async pause() {
      const op = ++this.op;
      const time = this.running ? this.leader(this.position).currentTime : this.position;
      this.stopAll();
      // All videos come to rest on the same frame, even if they stopped a few milliseconds apart.
      this.position = this.snap(time);
      this.setState("seeking");
      this.render(this.position);
      await this.seekAll(this.position);
      if (op === this.op) this.setState("paused");
    }

    // Seeking keeps playing if it was playing (like every player); stepping always pauses.
    async seekTo(time, { resume = this.wantPlaying } = {}) {
      const op = ++this.op;
      this.stopAll();
      this.wantPlaying = resume;
      this.position = this.snap(time);
      this.setState("seeking");
      this.render(this.position);
      await this.seekAll(this.position);
      if (op !== this.op) return;
      if (resume) this.play();
      else this.setState("paused");
    }

    step(frames) {
      const from = this.running ? this.leader(this.position).currentTime : this.position;
      const last = Math.max(0, Math.ceil(this.duration * this.fps - 0.01) - 1);
      const index = Math.min(Math.max(this.frameAt(from) + frames, 0), last);
      return this.seekTo(this.frameStart(index), { resume: false });
    }

    toggle() {
      return this.wantPlaying ? this.pause() : this.play();
    }

    toggleLoop() {
      this.loop = !this.loop;
      this.loopButton?.setAttribute("aria-pressed", String(this.loop));
    }

    setSpeed(rate) {
      this.rate = rate;
      this.videos.forEach((video) => {
        video.defaultPlaybackRate = rate;
        this.setRate(video, rate);
      });
    }

    toggleSound(video) {
      video.muted = !video.muted;
    }

    // ---- the engine ----

    stopAll() {
      this.running = false;
      this.wantPlaying = false;
      this.videos.forEach((video) => video.pause());
    }

    setRate(video, rate) {
      if (Math.abs(video.playbackRate - rate) > 1e-6) video.playbackRate = rate;
    }

    alignedAt(time) {
      return this.videos.every(
        (video) => !video.seeking && video.readyState > 0 && Math.abs(video.currentTime - Math.min(time, this.end(video))) < 0.001,
      );
    }

    seekAll(time) {
      return Promise.all(this.videos.map((video) => seekVideo(video, () => Math.min(time, this.end(video)))));
    }

    tick() {
      if (!this.running) return;
      const lead = this.leader(this.position);
      const time = lead.currentTime;
      if (this.longest.ended || time >= this.duration - 0.001) {
        this.reachedEnd();
        return;
      }
      if (lead.paused && !lead.seeking) {
        // Something other than the transport paused the leader (a media key, the browser): follow it.
        this.pause();
        return;
      }
      if (this.stalled(lead, time)) return;
      let spread = 0;
      for (const video of this.videos) {
        if (video === lead) {
          this.setRate(video, this.rate);
        } else {
          spread = Math.max(spread, this.follow(video, time));
          if (!this.running) return;
        }
      }
      this.stats.maxSpread = Math.max(this.stats.maxSpread, spread);
      this.position = time;
      this.render(time);
      requestAnimationFrame(this.tick);
    }

    // Brings one follower back to the leader's time; returns the drift it had.
    follow(video, time) {
      if (time >= this.end(video) - this.frame) {
        this.setRate(video, this.rate); // it is about to hold, or holds, its last frame
        return 0;
      }
      if (video.seeking) return 0;
      if (this.stalled(video, time)) return 0;
      if (video.paused) {
        // It ended or was stopped behind the transport's back while the timeline still covers it.
        this.jump(video, time);
        this.startVideo(video);
        return 0;
      }
      const drift = video.currentTime - time;
      if (Math.abs(drift) >= this.frame) {
        this.jump(video, time);
        return Math.abs(drift);
      }
      let nudge = 0;
      if (Math.abs(drift) > DRIFT_IGNORED) {
        const limit = video.muted ? NUDGE_LIMIT : NUDGE_LIMIT_HEARD;
        nudge = Math.max(-limit, Math.min(limit, -drift / NUDGE_HORIZON));
      }
      // Rounded so the rate is not rewritten (and the media pipeline not reconfigured) on every frame.
      this.setRate(video, this.rate * (1 + Math.round(nudge * 100) / 100));
      return Math.abs(drift);
    }

    // A hard correction: the follower keeps playing while it seeks, so it is sent a little ahead, and how far
    // ahead is learnt from how far off it lands.
    jump(video, time) {
      this.stats.jumps += 1;
      const target = Math.min(time + this.seekLead * this.rate, this.end(video));
      this.setRate(video, this.rate);
      video.currentTime = target;
      video.addEventListener(
        "seeked",
        () => {
          requestAnimationFrame(() => {
            if (!this.running || video.seeking || video.paused) return;
            const lead = this.leader(this.position);
            if (lead === video) return;
            const landed = video.currentTime - lead.currentTime;
            this.seekLead = Math.min(0.5, Math.max(0, this.seekLead - landed / this.rate / 2));
          });
        },
        { once: true },
      );
    }

    // Buffering: stop everything, and start again together once every video can play.
    stalled(video, time) {
      if (video.readyState >= HAVE_FUTURE_DATA || video.seeking || time >= this.end(video) - this.frame) {
        this.stalledSince.delete(video);
        return false;
      }
      const since = this.stalledSince.get(video) ?? performance.now();
      this.stalledSince.set(video, since);
      if (performance.now() - since < STALL_MS) return false;
      this.rebuffer();
      return true;
    }

    rebuffer() {
      const time = this.leader(this.position).currentTime;
      this.stopAll();
      this.position = this.snap(time);
      this.play();
    }

    reachedEnd() {
      if (this.loop) {
        this.stopAll();
        this.position = 0;
        this.play();
        return;
      }
      this.seekTo(this.duration, { resume: false });
    }

    // ---- the transport ----

    setState(state) {
      this.root.dataset.state = state;
      this.root.classList.toggle("is-playing", this.wantPlaying);
      this.playButton?.setAttribute("aria-label", this.wantPlaying ? "Pause" : "Play");
    }

    render(time) {
      const duration = this.duration;
      if (this.seekInput && !this.scrubbing) this.seekInput.value = String(time);
      if (this.seekInput) {
        this.seekInput.setAttribute("aria-valuetext", `${this.format(time)} of ${this.format(duration)}`);
        this.seekInput.style.setProperty("--progress", `${duration ? (Math.min(time, duration) / duration) * 100 : 0}%`);
      }
      if (this.clock && document.activeElement !== this.clock) this.clock.value = this.format(time);
    }

    showDuration() {
      const duration = this.duration;
      if (this.seekInput && duration) this.seekInput.max = String(duration);
      if (this.total) this.total.textContent = this.format(duration);
      if (this.videos.length) {
        // Every cell gets the same frame: as wide as the widest picture, so portrait clips sit side by side.
        const ratio = Math.max(...this.videos.map((v) => (v.videoWidth || v.width || 16) / (v.videoHeight || v.height || 9)));
        this.root.style.setProperty("--compare-aspect", String(ratio));
        this.root.classList.toggle("compare-portrait", ratio < 1);
      }
    }

    bind() {
      this.playButton?.addEventListener("click", () => this.toggle());
      this.root.querySelectorAll("[data-transport-step]").forEach((button) => {
        button.addEventListener("click", () => this.step(Number(button.dataset.transportStep) || 0));
      });
      this.loopButton?.addEventListener("click", () => this.toggleLoop());
      this.speedSelect?.addEventListener("change", () => this.setSpeed(Number(this.speedSelect.value) || 1));

      this.root.querySelectorAll("[data-compare-sound]").forEach((button) => {
        const video = button.closest(".compare-cell")?.querySelector("[data-compare-video]");
        if (!video || button.disabled) return;
        button.addEventListener("click", () => this.toggleSound(video));
        video.addEventListener("volumechange", () => {
          button.setAttribute("aria-pressed", String(!video.muted));
          button.closest(".compare-cell")?.classList.toggle("is-heard", !video.muted);
        });
      });

      if (this.seekInput) {
        this.seekInput.addEventListener("input", () => this.scrub(Number(this.seekInput.value)));
        this.seekInput.addEventListener("change", () => this.endScrub(Number(this.seekInput.value)));
      }

      if (this.clock) {
        this.clock.addEventListener("focus", () => this.clock.select());
        this.clock.addEventListener("input", () => this.clock.removeAttribute("aria-invalid"));
        this.clock.addEventListener("blur", () => {
          this.clock.removeAttribute("aria-invalid");
          this.render(this.position);
        });
        this.clock.addEventListener("keydown", (event) => {
          if (event.key === "Enter") {
            event.preventDefault();
            const time = this.parse(this.clock.value);
            if (time === null) {
              this.clock.setAttribute("aria-invalid", "true");
              return;
            }
            this.clock.removeAttribute("aria-invalid");
            this.seekTo(time).then(() => {
              this.clock.value = this.format(this.position);
              this.clock.select();
            });
          } else if (event.key === "Escape") {
            this.clock.blur();
          }
        });
      }

      this.videos.forEach((video) => {
        video.addEventListener("loadedmetadata", () => {
          this.showDuration();
          if (!this.wantPlaying) this.render(this.position);
        });
        video.addEventListener("waiting", () => {
          if (this.running && !video.seeking && this.position < this.end(video) - this.frame) this.rebuffer();
        });
      });

      const claim = () => {
        activePlayer = this;
      };
      this.root.addEventListener("pointerdown", claim);
      this.root.addEventListener("focusin", claim);
    }

    scrub(time) {
      if (!this.scrubbing) {
        // Dragging pauses the videos and resumes them on release, so they do not fight the pointer.
        this.scrubbing = true;
        this.resumeAfterScrub = this.wantPlaying;
        this.op += 1;
        this.stopAll();
        this.setState("seeking");
      }
      this.position = this.snap(time);
      this.render(this.position);
      this.pendingScrub = this.position;
      this.drainScrub();
    }

    // Only the newest position is sent while a seek is under way, so a fast drag never queues up seeks.
    async drainScrub() {
      if (this.scrubBusy) return;
      this.scrubBusy = true;
      while (this.pendingScrub !== null) {
        const time = this.pendingScrub;
        this.pendingScrub = null;
        await this.seekAll(time);
      }
      this.scrubBusy = false;
    }

    endScrub(time) {
      const resume = this.scrubbing ? this.resumeAfterScrub : this.wantPlaying;
      this.scrubbing = false;
      this.pendingScrub = null;
      this.seekTo(time, { resume });
    }
  }

  // Resolves once the video has shown the time target() gives (asked once its length is known).
  function seekVideo(video, target) {
    return new Promise((resolve) => {
      const start = () => {
        let timer = 0;
        const done = () => {
          clearTimeout(timer);
          video.removeEventListener("seeked", done);
          resolve();
        };
        timer = setTimeout(done, SEEK_TIMEOUT_MS);
        video.addEventListener("seeked", done);
        video.currentTime = target();
      };
      if (video.readyState > 0) start();
      else video.addEventListener("loadedmetadata", start, { once: true });
    });
  }

  function whenCanPlay(video) {
    if (video.readyState >= HAVE_FUTURE_DATA) return Promise.resolve();
    return new Promise((resolve) => video.addEventListener("canplay", resolve, { once: true }));
  }

  // ---- the keyboard: Space, ←/→ (Shift: a second), L, Home/End ----

  const FIELD_INPUTS = new Set(["text", "search", "email", "number", "password", "tel", "url", "date", "time", "radio"]);

  function isField(element) {
    if (!(element instanceof Element)) return false;
    if (element.isContentEditable || element.closest("textarea, select")) return true;
    return element.tagName === "INPUT" && FIELD_INPUTS.has(element.type);
  }

  function playerFor(target) {
    const root = target instanceof Element ? target.closest("[data-compare]") : null;
    if (root) {
      // The reviewer's own controls in the captions keep their keyboard behaviour.
      if (target.closest(".compare-cell-caption") && target !== root) return null;
      return players.find((player) => player.root === root) || null;
    }
    // Outside any player only a focus on nothing in particular (the page) drives it, never a link or button.
    if (target instanceof Element && target !== document.body && target.closest("a, button, input, select, textarea, summary, [tabindex]")) {
      return null;
    }
    return activePlayer || players[0] || null;
  }

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || isField(event.target)) return;
    const player = playerFor(event.target);
    if (!player) return;
    const second = player.fps;
    switch (event.key) {
      case " ":
        if (!event.repeat) player.toggle();
        break;
      case "ArrowLeft":
        player.step(event.shiftKey ? -second : -1);
        break;
      case "ArrowRight":
        player.step(event.shiftKey ? second : 1);
        break;
      case "l":
      case "L":
        player.toggleLoop();
        break;
      case "Home":
        player.seekTo(0);
        break;
      case "End":
        player.seekTo(player.duration, { resume: false });
        break;
      default:
        return;
    }
    activePlayer = player;
    event.preventDefault();
  });

  // Browsers pause or throttle hidden videos unevenly; stopping together is the only way to stay in step.
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) players.forEach((player) => player.wantPlaying && player.pause());
  });

  function start() {
    document.querySelectorAll("[data-compare]").forEach((root) => {
      if (!players.some((player) => player.root === root)) players.push(new ComparePlayer(root));
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();

  // For a person debugging in the console; nothing on the page relies on it.
  window.studioCompare = { players };
})();
