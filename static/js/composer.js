// The composer's small enhancements: Ctrl/Cmd+Enter sends, images can be dropped on their slot and are
// previewed while they upload, typing is never lost while the fields re-render, and loading a job's
// settings asks first when the composer holds unsent work. The composer works without this file.
"use strict";

(() => {
  const composer = () => document.getElementById("composer");
  const TEXT_INPUTS = "textarea, input[type=text], input[type=number]";

  // Ctrl+Enter (Cmd+Enter on a Mac) sends, from anywhere in the composer.
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
    const form = event.target.closest && event.target.closest("#composer");
    const send = form && form.querySelector("#composer-send");
    if (send && !send.disabled) {
      event.preventDefault();
      send.click();
    }
  });

  // Unsent work: anything typed or chosen since the composer was last rendered by the server.
  document.addEventListener("input", (event) => {
    const form = event.target.closest && event.target.closest("#composer");
    if (form) form.dataset.dirty = "true";
  });

  // "Edit and run" and "Try on another model" replace the composer: only after asking, if it holds unsent work.
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("a[data-composer-load]");
    const form = composer();
    if (!link || !form || form.dataset.dirty !== "true") return;
    if (!window.confirm("Replace what you have in the composer with this job's settings?")) {
      event.preventDefault();
    }
  });

  // Dropping files on a slot puts them in its file input, which uploads them (hx-trigger="change").
  const zoneOf = (event) => event.target.closest && event.target.closest("[data-dropzone]");
  ["dragenter", "dragover"].forEach((type) => {
    document.addEventListener(type, (event) => {
      const zone = zoneOf(event);
      if (!zone || !event.dataTransfer || !Array.from(event.dataTransfer.types).includes("Files")) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      zone.classList.add("is-over");
    });
  });
  document.addEventListener("dragleave", (event) => {
    const zone = zoneOf(event);
    if (zone && !zone.contains(event.relatedTarget)) zone.classList.remove("is-over");
  });
  document.addEventListener("drop", (event) => {
    const zone = zoneOf(event);
    if (!zone) {
      // A file dropped beside a slot must not make the browser leave the page to show it.
      if (event.target.closest && event.target.closest("#composer")) event.preventDefault();
      return;
    }
    event.preventDefault();
    zone.classList.remove("is-over");
    const input = zone.querySelector("input[type=file]");
    const files = Array.from(event.dataTransfer.files || []);
    if (!input || input.disabled || !files.length) return;
    const chosen = new DataTransfer();
    (input.multiple ? files : files.slice(0, 1)).forEach((file) => chosen.items.add(file));
    input.files = chosen.files;
    input.dispatchEvent(new Event("change", { bubbles: true }));
  });

  // A preview of the chosen file while it uploads; the server's answer replaces it with the stored copy.
  document.addEventListener("change", (event) => {
    const input = event.target;
    if (!(input instanceof HTMLInputElement) || input.type !== "file" || !input.closest("#composer")) return;
    const zone = input.closest("[data-dropzone]");
    if (!zone || !input.files.length) return;
    zone.querySelectorAll(".dropzone-preview").forEach((img) => img.remove());
    Array.from(input.files).slice(0, 4).forEach((file) => {
      const img = document.createElement("img");
      img.className = "dropzone-preview";
      img.alt = "";
      img.src = URL.createObjectURL(file);
      img.addEventListener("load", () => URL.revokeObjectURL(img.src), { once: true });
      zone.appendChild(img);
    });
    zone.classList.add("is-uploading");
  }, true);

  // The fields re-render after a change; whatever is typed into the focused field meanwhile is kept.
  let typing = null;
  document.addEventListener("htmx:beforeSwap", (event) => {
    const active = document.activeElement;
    typing = null;
    if (event.detail.target && event.detail.target.contains(active) && active.id && active.matches(TEXT_INPUTS)) {
      typing = { id: active.id, value: active.value };
    }
  });
  document.addEventListener("htmx:afterSwap", () => {
    if (!typing) return;
    const field = document.getElementById(typing.id);
    if (field && field.value !== typing.value) {
      field.value = typing.value;
      if (field.setSelectionRange && field.type !== "number") {
        field.setSelectionRange(field.value.length, field.value.length);
      }
    }
    typing = null;
  });
})();
