// The annotator page, keyboard first. The server renders everything; this file maps keys to
// the page's buttons and forms, times each item and keeps focus sensible across htmx swaps.
// On a span project the keys go to the span editor (spans.js) first: arrows, Shift+arrows,
// label keys, Backspace/Delete and Escape are its; Enter submits the spans.
(function () {
  "use strict";

  let shownAt = performance.now();
  // From a request's start until htmx has settled the new workspace, keys wait: a key pressed
  // on a not yet processed form would submit it natively.
  let settling = false;

  const workspace = () => document.getElementById("annotate-workspace");
  const form = () => document.getElementById("annotate-form");
  const isMulti = () => workspace() && workspace().dataset.multi === "1";
  const isSpans = () => workspace() && workspace().dataset.spans === "1";
  const spanEditor = () =>
    isSpans() && form() && window.ConcordSpans ? window.ConcordSpans.editorIn(form()) : null;
  const openDialog = () => document.querySelector("#annotate-workspace dialog[open]");
  const busy = () => {
    if (settling) return true;
    const f = form();
    return document.querySelector("#annotate-workspace .htmx-request") !== null ||
      (f && f.classList.contains("htmx-request"));
  };
  const typing = (el) =>
    el && (el.tagName === "TEXTAREA" || (el.tagName === "INPUT" && el.type === "text"));

  function labelFor(key) {
    const ws = workspace();
    if (!ws || !key) return null;
    for (const el of ws.querySelectorAll(".label-buttons [data-key]")) {
      if (el.dataset.key && el.dataset.key.toLowerCase() === key.toLowerCase()) return el;
    }
    return null;
  }

  function submitWith(button) {
    const f = form();
    if (!f || busy()) return;
    f.querySelector("input[name=lead_time_ms]").value = Math.round(performance.now() - shownAt);
    // A click (not requestSubmit) lets htmx send the clicked label button's name and value.
    if (button) button.click();
    else f.requestSubmit();
  }

  function toggle(labelEl) {
    const box = labelEl.querySelector("input[type=checkbox]");
    box.checked = !box.checked;
    labelEl.classList.toggle("on", box.checked);
  }

  function showDialog(id) {
    const dialog = document.getElementById(id);
    if (dialog && !dialog.open) dialog.showModal();
    return dialog;
  }

  function skipDialogKey(dialog, event) {
    const reasons = dialog.querySelectorAll("input[type=radio]");
    const n = parseInt(event.key, 10);
    if (!typing(event.target) && n >= 1 && n <= reasons.length) {
      reasons[n - 1].checked = true;
      if (reasons[n - 1].dataset.other !== undefined) dialog.querySelector(".skip-other").focus();
      event.preventDefault();
    } else if (event.key === "Enter") {
      event.preventDefault();
      const other = dialog.querySelector("[data-other]");
      other.value = dialog.querySelector(".skip-other").value.trim();
      dialog.querySelector("form").requestSubmit();
    }
  }

  document.addEventListener("keydown", (event) => {
    if (!workspace() || event.ctrlKey || event.metaKey || event.altKey) return;
    const dialog = openDialog();
    if (dialog) {
      if (dialog.id === "skip-dialog") skipDialogKey(dialog, event);
      else if (event.key === "?") dialog.close();
      return; // Esc closes dialogs natively
    }
    // A focused button takes Enter and Space itself (a click), never a second action.
    if ((event.key === "Enter" || event.key === " ") && event.target.closest &&
        event.target.closest("button")) return;
    if (event.key === "Escape") {
      const editor = spanEditor();
      if (editor && !busy() && editor.handleKey("Escape", false)) {
        event.preventDefault();
        return;
      }
      document.activeElement && document.activeElement.blur();
      const banner = document.querySelector(".guideline-banner");
      if (banner) banner.remove();
      return;
    }
    if (typing(event.target)) {
      if (event.key === "Enter" && event.target.name === "comment") {
        event.preventDefault();
        commentDone(event.target);
      }
      return;
    }
    if (busy()) {
      // Typed ahead while the next item is on its way: apply it once the item is shown.
      event.preventDefault();
      pendingKeys.push([event.key, event.shiftKey]);
      return;
    }
    if (handleKey(event.key, event.shiftKey)) event.preventDefault();
  });

  const pendingKeys = [];

  // Enter in the comment field: multi-label projects submit the chosen labels, and so does a
  // reopened item with its preselected label; otherwise the comment waits for the label key
  // the annotator presses next, and the page says so.
  function commentDone(field) {
    field.blur();
    if (isMulti() || isSpans()) return submitWith(null);
    const chosen = workspace().querySelector(".label-btn.chosen");
    if (chosen) return submitWith(chosen);
    const note = workspace().querySelector(".comment-note");
    const kept = field.value.trim() !== "";
    field.classList.toggle("kept", kept);
    if (note) note.textContent = kept ? "Comment kept: it is sent with the label you choose next." : "";
  }

  // Images upscaled at least twice (an 8x8 digit) are drawn pixelated: crisp, not blurred.
  function markTinyImages() {
    for (const img of document.querySelectorAll("#annotate-workspace .item-image img")) {
      const mark = () => {
        const shown = img.getBoundingClientRect();
        const tiny = img.naturalWidth > 0 && img.naturalWidth * 2 <= shown.width;
        img.classList.toggle("pixelated", tiny);
      };
      if (img.complete) mark();
      else img.addEventListener("load", mark, { once: true });
    }
  }
  markTinyImages();

  function handleKey(key, shift) {
    const editor = spanEditor();
    if (editor && editor.handleKey(key, shift)) return true;
    const label = labelFor(key);
    if (label) {
      if (isMulti()) toggle(label);
      else submitWith(label);
      return true;
    }
    switch (key) {
      case "Enter": {
        if (isMulti() || isSpans()) submitWith(null);
        else {
          const chosen = workspace().querySelector(".label-btn.chosen");
          if (chosen) submitWith(chosen);
        }
        break;
      }
      case "u": {
        const box = workspace().querySelector("input[name=unsure]");
        if (box) box.checked = !box.checked;
        break;
      }
      case "c": {
        const comment = workspace().querySelector("input[name=comment]");
        if (comment) comment.focus();
        break;
      }
      case "s":
        if (form()) showDialog("skip-dialog");
        break;
      case "z":
        document.getElementById("undo-form").requestSubmit();
        break;
      case "?":
        showDialog("help-dialog");
        break;
      default:
        return false;
    }
    return true;
  }

  document.addEventListener("click", (event) => {
    const target = event.target.closest("[data-action], [data-close], [data-dismiss]");
    if (!target || !workspace()) return;
    if (target.dataset.action === "skip") showDialog("skip-dialog");
    else if (target.dataset.action === "undo") document.getElementById("undo-form").requestSubmit();
    else if (target.dataset.action === "help") showDialog("help-dialog");
    else if (target.dataset.close !== undefined) target.closest("dialog").close();
    else if (target.dataset.dismiss === "banner") target.closest(".guideline-banner").remove();
  });

  // Clicking a multi-label toggle keeps its look in step with its checkbox.
  document.addEventListener("change", (event) => {
    const toggleEl = event.target.closest(".label-toggle");
    if (toggleEl) toggleEl.classList.toggle("on", event.target.checked);
  });

  // Buttons clicked with the mouse get timed too.
  document.addEventListener("submit", (event) => {
    if (event.target.id === "annotate-form") {
      const lead = event.target.querySelector("input[name=lead_time_ms]");
      if (!lead.value) lead.value = Math.round(performance.now() - shownAt);
    }
  }, true);

  document.addEventListener("htmx:beforeRequest", (event) => {
    if (event.target.closest("#annotate-workspace")) settling = true;
  });
  document.addEventListener("htmx:afterRequest", (event) => {
    // A failed request swaps nothing, so nothing will settle.
    if (!event.detail.successful) {
      settling = false;
      pendingKeys.length = 0;
    }
  });

  document.addEventListener("htmx:afterSettle", (event) => {
    if (event.target.id === "annotate-workspace" || event.target.closest("#annotate-workspace")) {
      settling = false;
      shownAt = performance.now();
      markTinyImages();
      // Replay keys typed ahead, up to the next one that sends a request.
      while (pendingKeys.length && !busy()) handleKey(...pendingKeys.shift());
    }
  });

  document.addEventListener("htmx:responseError", () => {
    const ws = workspace();
    if (!ws || ws.querySelector(".notice.error")) return;
    const note = document.createElement("p");
    note.className = "notice error";
    note.textContent = "Could not save; your label was not stored. Check your connection and try again.";
    ws.prepend(note);
  });
})();
