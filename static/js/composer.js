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

  // "Edit and run" and "Try on another model" replace the composer: after asking, if it holds unsent work.
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

  // While a request is on its way, other live requests are dropped (hx-sync) and its answer re-renders the
  // fields as they were when it was sent. Whatever changed meanwhile (a value typed, a box ticked, a file
  // picked) is carried onto the new fields and sent again once they have settled, so nothing is lost.
  const isComposer = (element) => element && (element.id === "composer" || element.id === "composer-fields");
  const sameFile = (file, sent) => sent.some((other) => other instanceof File && other.name === file.name
    && other.size === file.size && other.lastModified === file.lastModified);
  const changedSince = (control, sent) => {
    const values = sent.getAll(control.name);
    if (control.type === "file") return Array.from(control.files).some((file) => !sameFile(file, values));
    if (control.type === "checkbox") return control.checked !== values.includes(control.value);
    return control.value !== (values.length ? String(values[values.length - 1]) : "");
  };
  let carried = null;
  let settling = false;
  let resend = false;

  document.addEventListener("htmx:beforeSwap", (event) => {
    const form = composer();
    const { target, requestConfig } = event.detail;
    if (!form || !isComposer(target) || !requestConfig || !requestConfig.formData) return;
    const sent = requestConfig.formData;
    const changes = [];
    form.querySelectorAll("input[name], select[name], textarea[name]").forEach((control) => {
      if (control.type === "file") {
        // Kept across the swap (hx-preserve): emptied once its files were sent, else uploaded after it.
        if (control.files.length && !changedSince(control, sent)) control.value = "";
        return;
      }
      if (control.type === "hidden" || control.disabled || !changedSince(control, sent)) return;
      if (target.contains(control) && control.id) {
        changes.push({ id: control.id, value: control.value, checked: control.checked });
      }
      resend = true; // a change outside what is replaced (the model picker) keeps its state: it is only sent
    });
    const active = document.activeElement;
    const typing = active && active.matches && active.matches(TEXT_INPUTS) && active.type !== "number";
    const caret = typing ? { id: active.id, start: active.selectionStart, end: active.selectionEnd } : null;
    carried = { changes, caret };
  });

  document.addEventListener("htmx:afterSwap", (event) => {
    if (!isComposer(event.detail.target) || !carried) return;
    settling = true;
    carried.changes.forEach((change) => {
      const control = document.getElementById(change.id);
      if (control && control.type === "checkbox") control.checked = change.checked;
      else if (control) control.value = change.value;
    });
    const caret = carried.caret;
    const focused = caret && document.getElementById(caret.id);
    if (focused && document.activeElement === focused && focused.setSelectionRange) {
      focused.setSelectionRange(caret.start, caret.end);
    }
    carried = null;
  });

  // htmx listens to the new fields only once they have settled: a change made before then is sent now.
  document.addEventListener("change", (event) => {
    if (settling && event.target.closest && event.target.closest("#composer")) resend = true;
  }, true);

  // After settling: a file still in its input was never uploaded (an uploaded one is shown, not kept there).
  document.addEventListener("htmx:afterSettle", (event) => {
    if (!isComposer(event.detail.target)) return;
    const files = Array.from(document.querySelectorAll("#composer-fields input[type=file]"));
    const live = files.find((input) => input.files.length)
      || (resend ? document.getElementById("composer-fields") : null);
    settling = resend = false;
    if (live) live.dispatchEvent(new Event("change", { bubbles: true }));
  });
})();
