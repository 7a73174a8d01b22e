// Reviewing: gallery cards that scrub through their thumbnail strip, the compare picker, comments that seek
// the player and keep the moment they were written at. Every page works without this file.
"use strict";

(() => {
  // Gallery: hovering a card shows the strip frame under the pointer; focusing it plays the strip through.
  const STRIP_STEP_MS = 450;

  function stripOf(thumb) {
    let strip = thumb.querySelector(".thumb-strip");
    if (!strip) {
      strip = document.createElement("span");
      strip.className = "thumb-strip";
      strip.setAttribute("aria-hidden", "true");
      const image = document.createElement("img");
      image.alt = "";
      image.src = thumb.dataset.strip;
      strip.append(image);
      const bar = document.createElement("span");
      bar.className = "thumb-progress";
      strip.append(bar);
      thumb.append(strip);
    }
    return strip;
  }

  function showFrame(thumb, index) {
    const count = Number(thumb.dataset.stripCount) || 1;
    const frame = Math.max(0, Math.min(count - 1, index));
    const strip = stripOf(thumb);
    const image = strip.querySelector("img");
    // The strip is `count` frames side by side: widen it to count × the card and slide the wanted frame in.
    image.style.width = `${count * 100}%`;
    image.style.transform = `translateX(${(-100 * frame) / count}%)`;
    strip.querySelector(".thumb-progress").style.width = `${((frame + 1) * 100) / count}%`;
    thumb.classList.add("is-scrubbing");
    thumb.dataset.frame = String(frame);
  }

  function stopScrub(thumb) {
    clearInterval(thumb._stripTimer);
    thumb._stripTimer = null;
    thumb.classList.remove("is-scrubbing");
  }

  document.addEventListener("pointermove", (event) => {
    const thumb = event.target.closest?.(".result-thumb[data-strip]");
    if (!thumb) return;
    const box = thumb.getBoundingClientRect();
    const count = Number(thumb.dataset.stripCount) || 1;
    showFrame(thumb, Math.floor(((event.clientX - box.left) / box.width) * count));
  });
  document.addEventListener("pointerout", (event) => {
    const thumb = event.target.closest?.(".result-thumb[data-strip]");
    if (thumb && !thumb.contains(event.relatedTarget) && document.activeElement !== thumb) stopScrub(thumb);
  });
  document.addEventListener("focusin", (event) => {
    const thumb = event.target.closest?.(".result-thumb[data-strip]");
    if (!thumb || thumb._stripTimer) return;
    const count = Number(thumb.dataset.stripCount) || 1;
    let frame = 0;
    showFrame(thumb, frame);
    thumb._stripTimer = setInterval(() => showFrame(thumb, (frame = (frame + 1) % count)), STRIP_STEP_MS);
  });
  document.addEventListener("focusout", (event) => {
    const thumb = event.target.closest?.(".result-thumb[data-strip]");
    if (thumb) stopScrub(thumb);
  });

  // The compare picker: says how many are ticked and whether that can be compared.
  function updatePicker() {
    const form = document.querySelector("[data-compare-picker]");
    if (!form) return;
    const ticked = document.querySelectorAll(`input[name=result][form="${form.id}"]:checked`).length;
    const text = form.querySelector("[data-compare-count]");
    const button = form.querySelector("[data-compare-submit]");
    form.classList.toggle("is-active", ticked > 0);
    button.disabled = ticked < 2 || ticked > 4;
    if (ticked === 0) text.textContent = "Tick 2 to 4 videos to compare them side by side.";
    else if (ticked === 1) text.textContent = "1 video ticked: tick at least one more.";
    else if (ticked <= 4) text.textContent = `${ticked} videos ticked.`;
    else text.textContent = `${ticked} videos ticked: a comparison shows at most 4.`;
    document.querySelectorAll(".result-card").forEach((card) => {
      card.classList.toggle("is-ticked", !!card.querySelector("input[name=result]:checked"));
    });
  }
  document.addEventListener("change", (event) => {
    if (event.target.matches("input[name=result]")) updatePicker();
  });
  document.addEventListener("htmx:afterSettle", updatePicker);
  document.addEventListener("DOMContentLoaded", updatePicker);

  // Comments: a time code plays from that moment; writing a comment pauses the player and keeps the moment.
  function player() {
    return document.querySelector("video[data-player]");
  }

  function timecodeText(seconds) {
    const hundredths = Math.round(seconds * 100);
    const minutes = Math.floor(hundredths / 6000);
    const rest = hundredths % 6000;
    return `${minutes}:${String(Math.floor(rest / 100)).padStart(2, "0")}.${String(rest % 100).padStart(2, "0")}`;
  }

  document.addEventListener("click", (event) => {
    const link = event.target.closest("[data-seek]");
    const video = player();
    if (!link || !video) return;
    event.preventDefault();
    video.currentTime = Number(link.dataset.seek);
    video.scrollIntoView({ block: "nearest", behavior: "smooth" });
    video.focus({ preventScroll: true });
  });

  function captureMoment(force) {
    const video = player();
    const field = document.querySelector("[data-comment-timecode]");
    if (!video || !field) return;
    if (force || (!field.value && !field.dataset.typed && video.currentTime > 0)) {
      video.pause();
      field.value = timecodeText(video.currentTime);
    }
  }
  document.addEventListener("focusin", (event) => {
    if (event.target.matches("[data-comment-body]")) captureMoment(false);
  });
  document.addEventListener("input", (event) => {
    if (event.target.matches("[data-comment-timecode]")) event.target.dataset.typed = "1";
  });
  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-timecode-now]")) captureMoment(true);
  });
  function revealNowButtons() {
    if (!player()) return;
    document.querySelectorAll("[data-timecode-now]").forEach((button) => { button.hidden = false; });
  }
  document.addEventListener("DOMContentLoaded", revealNowButtons);
  document.addEventListener("htmx:afterSettle", revealNowButtons);

  // "Copy link" on a comparison: its address is what a teammate opens.
  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-copy-url]").forEach((button) => {
      if (!navigator.clipboard) return;
      button.hidden = false;
      button.addEventListener("click", async () => {
        await navigator.clipboard.writeText(window.location.href);
        button.textContent = "Link copied";
        setTimeout(() => { button.textContent = "Copy link"; }, 1800);
      });
    });
  });
})();
