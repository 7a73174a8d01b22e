// The comparison player: one transport drives 2 to 4 videos and keeps them within a frame of each other.
//
// There is one clock, a leading video, and the others follow it. During playback a requestAnimationFrame loop
// measures each follower's drift: a silent follower that is slightly off runs a little fast or slow until it is
// level, one off by a frame or more is re-seeked. Every seek or frame step sets all videos to the same time and
// waits until each has shown it. A video shorter than the timeline holds its last frame.
//
// What Chromium taught us (measured on the sandbox's videos): a video with a soundtrack, even muted, is clocked by
// its audio output. It starts about 40 ms after a silent one (more at 2×, more still when heard), so each video's
// delay is measured and the faster ones are started that much later; a soundtrack video leads when there is one.
// With pitch preserved, every playbackRate change sends the audio through a time-stretcher that makes the clock
// jump by 10-30 ms and restart unpredictably; a muted video is not heard, so it plays with preservesPitch off
// (plain resampling) and follows as smoothly as a silent one. A second heard video is only ever re-seeked.
"use strict";

(() => {
  // First guesses of how late a video starts moving after play() (or after a seek while playing), in seconds of
  // wall time; each video's real delay is measured as it plays, per playback speed.
  const DELAY_SOUNDTRACK = 0.04;
  const DELAY_SILENT = 0.004;
  // After a video starts or is re-seeked it is left alone this long (unless it is far off), then measured.
  const SETTLE_MS = 150;
  const SETTLE_FAR_FRAMES = 3;
  // A muted follower off by more than this (about a third of a frame) runs 10 % fast or slow until nearly level:
  // it stops a little early because the drift it sees is averaged and a new rate takes a moment to show.
  const NUDGE_FROM = 0.015;
  const NUDGE_UNTIL = 0.005;
  const NUDGE = 0.1;
  const NUDGE_HOLD_MS = 100;
  // A leading video hands over this long before its end, where a soundtrack's clock falters.
  const LEAD_UNTIL_END = 0.25;
  // A heard follower (when two videos have their sound on) is re-seeked once it is off by half a frame.
  const RESEEK_HEARD_FRAMES = 0.5;
  // A soundtrack's clock advances in steps (at 2× they are ±10 ms apart): the leader's time is predicted from the
  // wall clock and pulled this much towards each reading, and each follower's drift is averaged the same way.
  const SMOOTHING = 0.3;
  // Seeks land just after the start of a frame: landing exactly on it can round to the previous frame.
  const LAND_INSIDE = 0.0005;
  // A seek that never reports back (a broken file, a dropped connection) must not freeze the transport.
  const SEEK_TIMEOUT_MS = 5000;
  // A video that has had too little data for this long, outside of a seek, is buffering.
  const STALL_MS = 300;
  const HAVE_FUTURE_DATA = 3;

  const players = [];
  let activePlayer = null;

  const hasSoundtrack = (video) => "audio" in video.dataset;

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
      this.resumeAfterScrub = false;
      this.pendingScrub = null;
      this.scrubBusy = false;
      this.delays = new Map(); // delayKey() -> measured start delay, in seconds of media time
      this.settling = new Map(); // video -> { kind: "start" | "restart" | "seek", until }: left alone, then measured
      this.nudging = new Map(); // video -> { direction: -1 | 1, heldUntil }
      this.drifts = new Map(); // video -> its averaged drift from the leader
      this.clockState = null; // { lead, time, at }: the smoothed time of the leader
      this.stalledSince = new Map();
      this.startCheck = null; // { time, until, calledAt, kinds } of the last start, to measure each video's delay
      this.stats = { reseeks: 0, maxDrift: 0 };
      this.tick = this.tick.bind(this);

      this.bind();
      this.showDuration();
      this.render(0);
    }

    // ---- time ----

    // Before its metadata arrives a video's length is the one the server probed; a video that failed has none.
    end(video) {
      if (video.error) return 0;
      return Number.isFinite(video.duration) && video.duration > 0 ? video.duration : Number(video.dataset.duration) || 0;
    }

    get duration() {
      return Math.max(0, ...this.videos.map((video) => this.end(video)));
    }

    get longest() {
      return this.videos.reduce((best, video) => (this.end(video) > this.end(best) ? video : best), this.videos[0]);
    }

    // The heard video leads, so its sound is never cut by a correction; else the longest soundtrack video (its
    // clock is the one that suffers from corrections, and the longest rarely has to hand over); else the longest.
    leader(time) {
      const running = this.videos.filter((video) => !video.error && time < this.end(video) - LEAD_UNTIL_END);
      const byLength = running.sort((a, b) => this.end(b) - this.end(a));
      return byLength.find((video) => hasSoundtrack(video) && !video.muted) || byLength.find(hasSoundtrack) || this.longest;
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
      if (/^(\d+(\.\d*)?|\.\d+)$/.test(value)) return Number(value);
      const parts = value.match(/^(\d+):(\d{1,2})(?:[.:](\d{1,2}))?$/);
      if (!parts) return null;
      const [minutes, seconds, frames] = [Number(parts[1]), Number(parts[2]), Number(parts[3] || 0)];
      if (seconds >= 60 || frames >= this.fps) return null;
      return minutes * 60 + seconds + frames / this.fps;
    }

    // Measured per video, per kind of start ("start", "restart" just after its end, "seek" while playing), per
    // speed, and heard or not: each of these changes how long a soundtrack's clock takes to get going.
    delayKey(video, kind) {
      return `${this.videos.indexOf(video)} ${kind} ${this.rate} ${video.muted ? "muted" : "heard"}`;
    }

    delay(video, kind) {
      const key = this.delayKey(video, kind);
      if (this.delays.has(key)) return this.delays.get(key);
      if (kind === "restart") return this.delay(video, "start");
      return (hasSoundtrack(video) ? DELAY_SOUNDTRACK : DELAY_SILENT) * this.rate;
    }

    // Averaged: under load a soundtrack's start delay varies from one start to the next (0 or 40 ms, say), and
    // the average keeps the worst start error smallest.
    learnDelay(video, kind, delay) {
      const key = this.delayKey(video, kind);
      const measured = Math.min(0.5 * this.rate, Math.max(0, delay));
      this.delays.set(key, this.delays.has(key) ? (this.delays.get(key) + measured) / 2 : measured);
    }

    // Once settled, each started video (the leader too) is where it would be had it started `delay` late.
    measureStart() {
      const { time, calledAt, kinds } = this.startCheck;
      const now = performance.now();
      for (const [video, at] of calledAt) {
        const elapsed = ((now - at) / 1000) * this.rate;
        if (video.seeking || video.paused || time + elapsed > this.end(video) - this.frame) continue;
        this.learnDelay(video, kinds.get(video), time + elapsed - video.currentTime);
      }
      this.startCheck = null;
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
      const starting = this.videos.filter((video) => !video.error && time < this.end(video) - this.frame / 2);
      const kinds = new Map(starting.map((video) => [video, video.ended ? "restart" : "start"]));
      if (!this.alignedAt(time)) await this.seekAll(time);
      if (op !== this.op) return;
      if (starting.some((video) => video.readyState < HAVE_FUTURE_DATA)) {
        this.setState("buffering");
        await Promise.all(starting.map(whenCanPlay));
        if (op !== this.op) return;
      }
      this.videos.forEach((video) => this.setRate(video, this.rate));
      this.nudging.clear();
      this.drifts.clear();
      this.clockState = null;
      // The slowest starter is told first and each faster one later by the difference, so that all show the same
      // frame until they all move at once.
      const delays = new Map(starting.map((video) => [video, this.delay(video, kinds.get(video))]));
      const last = Math.max(...delays.values());
      const calledAt = new Map();
      await Promise.all(
        starting.map(async (video) => {
          const wait = ((last - delays.get(video)) / this.rate) * 1000;
          if (wait >= 1) await new Promise((resolve) => setTimeout(resolve, wait));
          if (op !== this.op) return;
          calledAt.set(video, performance.now());
          await this.startVideo(video);
        }),
      );
      if (op !== this.op) return;
      this.running = true;
      this.stalledSince.clear();
      const until = performance.now() + SETTLE_MS;
      starting.forEach((video) => this.settling.set(video, { kind: kinds.get(video), until }));
      this.startCheck = { time, until, calledAt, kinds };
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
        // An AbortError means a pause or a seek came first, and that is now the current command.
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
      this.nudging.clear();
      this.videos.forEach((video) => {
        video.defaultPlaybackRate = rate;
        this.setRate(video, rate);
      });
      // Start delays differ per speed: a running transport restarts so every video starts level again.
      if (this.running) this.restart();
    }

    toggleSound(video, button) {
      video.muted = !video.muted;
      video.preservesPitch = !video.muted;
      button.setAttribute("aria-pressed", String(!video.muted));
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

    unNudge(video) {
      this.setRate(video, this.rate);
      this.nudging.delete(video);
    }

    alignedAt(time) {
      return this.videos.every((video) => {
        const target = Math.min(time, this.end(video));
        return video.error || (!video.seeking && video.readyState > 0 && Math.abs(video.currentTime - target) < 0.001);
      });
    }

    // Every video to `time` (past its end it holds its last frame); resolves once all of them show it.
    seekAll(time) {
      const videos = this.videos.filter((video) => !video.error);
      return Promise.all(videos.map((video) => seekVideo(video, () => Math.min(time, this.end(video)))));
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
      if (this.startCheck && performance.now() >= this.startCheck.until) this.measureStart();
      const smooth = this.smoothTime(lead, time);
      for (const video of this.videos) {
        if (video === lead) {
          this.unNudge(video);
        } else {
          this.follow(video, smooth);
          if (!this.running) return;
        }
      }
      this.position = time;
      this.render(time);
      requestAnimationFrame(this.tick);
    }

    smoothTime(lead, time) {
      const now = performance.now();
      const state = this.clockState;
      if (!state || state.lead !== lead) {
        this.clockState = { lead, time, at: now };
        return time;
      }
      const predicted = state.time + ((now - state.at) / 1000) * this.rate;
      // A jump (a seek, a stall) is taken as it is; only the small steps are averaged away.
      const smooth = Math.abs(time - predicted) > this.frame ? time : predicted + (time - predicted) * SMOOTHING;
      this.clockState = { lead, time: smooth, at: now };
      return smooth;
    }

    follow(video, time) {
      if (video.error || time >= this.end(video) - this.frame) {
        this.unNudge(video); // it is about to hold, or holds, its last frame
        return;
      }
      if (video.seeking || this.stalled(video, time)) return;
      if (video.paused) {
        // It ended or was stopped behind the transport's back while the timeline still covers it.
        this.reseek(video, time);
        this.startVideo(video);
        return;
      }
      const raw = video.currentTime - time;
      const now = performance.now();
      const settling = this.settling.get(video);
      if (settling) {
        if (now < settling.until && Math.abs(raw) < SETTLE_FAR_FRAMES * this.frame) return;
        this.settling.delete(video);
        this.drifts.set(video, raw);
        // After a re-seek the leader ran on steadily, so what is left is how wrong the seek delay was.
        if (settling.kind === "seek" && now >= settling.until) this.learnDelay(video, "seek", this.delay(video, "seek") - raw);
      }
      const previous = this.drifts.get(video) ?? raw;
      const drift = Math.abs(raw - previous) > this.frame ? raw : previous + (raw - previous) * SMOOTHING;
      this.drifts.set(video, drift);
      this.stats.maxDrift = Math.max(this.stats.maxDrift, Math.abs(drift));
      if (!video.muted) {
        if (Math.abs(drift) > RESEEK_HEARD_FRAMES * this.frame) this.reseek(video, time);
        return;
      }
      if (Math.abs(drift) >= this.frame) {
        this.reseek(video, time);
        return;
      }
      const { direction = 0, heldUntil = 0 } = this.nudging.get(video) || {};
      if (now < heldUntil) return;
      let next = direction;
      if (direction === 0 && Math.abs(drift) > NUDGE_FROM) next = drift < 0 ? 1 : -1;
      else if (direction !== 0 && -drift * direction <= NUDGE_UNTIL) next = 0;
      if (next !== direction) {
        this.setRate(video, this.rate * (1 + next * NUDGE));
        this.nudging.set(video, { direction: next, heldUntil: now + NUDGE_HOLD_MS });
      }
    }

    // The follower keeps playing through the seek but restarts late, so it is sent ahead by its measured delay.
    reseek(video, time) {
      this.stats.reseeks += 1;
      this.unNudge(video);
      this.drifts.delete(video);
      this.settling.set(video, { kind: "seek", until: Infinity });
      video.addEventListener("seeked", () => this.settling.set(video, { kind: "seek", until: performance.now() + SETTLE_MS }), {
        once: true,
      });
      video.currentTime = Math.min(time + this.delay(video, "seek"), this.end(video));
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
      this.restart();
      return true;
    }

    restart() {
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
      if (this.seekInput) {
        if (!this.scrubbing) this.seekInput.value = String(time);
        this.seekInput.setAttribute("aria-valuetext", `${this.format(time)} of ${this.format(duration)}`);
        this.seekInput.style.setProperty("--progress", `${duration ? (Math.min(time, duration) / duration) * 100 : 0}%`);
      }
      if (this.clock && document.activeElement !== this.clock) this.clock.value = this.format(time);
    }

    showDuration() {
      const duration = this.duration;
      if (this.seekInput && duration) this.seekInput.max = String(duration);
      if (this.total) this.total.textContent = this.format(duration);
      if (!this.videos.length) return;
      // Every cell gets the same frame, as wide as the widest picture; portrait-only sets get portrait frames.
      const ratios = this.videos.map((v) => (v.videoWidth || v.width || 16) / (v.videoHeight || v.height || 9));
      const ratio = Math.max(...ratios);
      this.root.style.setProperty("--compare-aspect", ratio.toFixed(4));
      this.root.classList.toggle("compare-portrait", ratio < 1);
    }

    bind() {
      this.playButton?.addEventListener("click", () => this.toggle());
      this.root.querySelectorAll("[data-transport-step]").forEach((button) => {
        button.addEventListener("click", () => this.step(Number(button.dataset.transportStep) || 0));
      });
      this.loopButton?.addEventListener("click", () => this.toggleLoop());
      this.speedSelect?.addEventListener("change", () => this.setSpeed(Number(this.speedSelect.value) || 1));

      this.root.querySelectorAll("[data-compare-sound]").forEach((button) => {
        const cell = button.closest(".compare-cell");
        const video = cell?.querySelector("[data-compare-video]");
        if (!video || button.disabled) return;
        button.addEventListener("click", () => this.toggleSound(video, button));
        video.addEventListener("volumechange", () => {
          video.preservesPitch = !video.muted;
          button.setAttribute("aria-pressed", String(!video.muted));
          cell.classList.toggle("is-heard", !video.muted);
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
            // Leaving the field hands the keyboard back to the transport: Space plays from the time just typed.
            this.clock.blur();
            this.seekTo(time);
          } else if (event.key === "Escape") {
            this.clock.blur();
          }
        });
      }

      this.videos.forEach((video) => {
        video.preservesPitch = !video.muted;
        // The poster is only for the moment before the first frame. Left in place, Chromium sometimes keeps
        // showing it over a paused video that was seeked before it ever played, so it goes once a frame is there.
        const dropPoster = () => video.removeAttribute("poster");
        if (video.readyState >= 2) dropPoster();
        else video.addEventListener("loadeddata", dropPoster, { once: true });
        video.addEventListener("loadedmetadata", () => {
          this.showDuration();
          if (!this.wantPlaying) this.render(this.position);
        });
        // Out of data mid-play: everyone waits. Not while it is still settling after a start or a re-seek,
        // when a short wait is normal (the stall check in the loop catches a long one).
        video.addEventListener("waiting", () => {
          const settling = this.settling.get(video);
          const justStarted = settling && performance.now() < settling.until;
          if (this.running && !video.seeking && !justStarted && this.position < this.end(video) - this.frame) this.restart();
        });
        video.addEventListener("error", () => {
          video.closest(".compare-cell")?.classList.add("is-broken");
          this.showDuration();
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
      else whenEither(video, "loadedmetadata", "error").then(() => (video.error ? resolve() : start()));
    });
  }

  // A video that fails to load must not keep the others waiting.
  function whenCanPlay(video) {
    if (video.readyState >= HAVE_FUTURE_DATA || video.error) return Promise.resolve();
    return whenEither(video, "canplay", "error");
  }

  function whenEither(video, ...events) {
    return new Promise((resolve) => {
      const done = () => {
        events.forEach((name) => video.removeEventListener(name, done));
        resolve();
      };
      events.forEach((name) => video.addEventListener(name, done));
    });
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
      // The reviewer's own controls in the captions (stars, pick, winner) keep their keyboard behaviour.
      if (target.closest(".compare-cell-caption")) return null;
      return players.find((player) => player.root === root) || null;
    }
    // Outside any player only a focus on nothing in particular (the page) drives it, never a link or a button.
    if (target instanceof Element && target !== document.body && target.closest("a, button, input, select, textarea, summary, [tabindex]")) {
      return null;
    }
    return activePlayer || players[0] || null;
  }

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || isField(event.target)) return;
    const player = playerFor(event.target);
    if (!player) return;
    switch (event.key) {
      case " ":
        if (!event.repeat) player.toggle();
        break;
      case "ArrowLeft":
        player.step(event.shiftKey ? -player.fps : -1);
        break;
      case "ArrowRight":
        player.step(event.shiftKey ? player.fps : 1);
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
