// Keyboard-first review queue of likely label errors (templates/analysis/issues.html).
// a accept, g keep, m ambiguous (relabel), e ambiguous + worked example (the reviewer picks
// the label; Ctrl+Enter adds it, Escape closes the form), j/k or arrows move.
// `/` focuses the filters (Enter in a menu applies them, Escape goes back to the list).
(function () {
  "use strict";
  const filters = document.getElementById("issues-filters");
  if (filters) {
    filters.addEventListener("keydown", (event) => {
      const target = event.target;
      if (event.key === "Enter" && (target.tagName === "SELECT" || target.type === "checkbox")) {
        event.preventDefault();
        filters.requestSubmit();
      }
    });
    document.addEventListener("keydown", (event) => {
      if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.target.closest && event.target.closest("input, textarea, select")) return;
      event.preventDefault();
      filters.querySelector("select, input").focus();
    });
  }
  const list = document.getElementById("issue-list");
  if (!list) return;
  const feedback = document.getElementById("issue-feedback");
  const rows = Array.from(list.querySelectorAll("li.issue"));
  let current = 0;

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (e) {
      return "";
    }
  }

  function select(index, scroll) {
    if (!rows.length) return;
    current = Math.max(0, Math.min(rows.length - 1, index));
    rows.forEach((row, i) => row.classList.toggle("current", i === current));
    if (scroll !== false) {
      rows[current].focus({ preventScroll: true });
      rows[current].scrollIntoView({ block: "nearest" });
    }
  }

  function nextOpen(from) {
    for (let i = from + 1; i < rows.length; i++) {
      if (rows[i].dataset.resolution === "open") return i;
    }
    return Math.min(from + 1, rows.length - 1);
  }

  const RESOLUTION_TEXT = {
    accepted: "Suggestion accepted",
    kept: "Label kept",
    ambiguous: "Ambiguous",
  };

  // Accept, keep and ambiguous go to the REST resolve endpoint as JSON.
  function resolve(row, body) {
    return send(row, row.dataset.resolveUrl, {
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  // POST to `url`; on success show the new resolution on the row. Answers true when saved.
  async function send(row, url, request) {
    row.classList.add("busy");
    try {
      const response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        body: request.body,
        headers: Object.assign(
          { Accept: "application/json", "X-CSRFToken": csrfToken() },
          request.headers || {}
        ),
      });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) {
        const reasons = Object.entries(answer)
          .filter(([key]) => key !== "detail" || Object.keys(answer).length === 1)
          .map(([key, value]) => (key === "detail" ? "" : key + ": ") + [].concat(value).join(" "));
        feedback.textContent = "Not saved: " + (reasons.join("; ") || response.status);
        feedback.className = "error";
        return false;
      }
      row.dataset.resolution = answer.resolution;
      const badge = row.querySelector(".badge.resolution");
      badge.className = "badge resolution " + answer.resolution;
      badge.textContent = RESOLUTION_TEXT[answer.resolution] || answer.resolution;
      row.classList.add("resolved");
      feedback.textContent = row.querySelector(".issue-head strong").textContent + ": " + badge.textContent + ".";
      feedback.className = "muted";
      return true;
    } catch (error) {
      feedback.textContent = "Not saved: the server could not be reached.";
      feedback.className = "error";
      return false;
    } finally {
      row.classList.remove("busy");
    }
  }

  function openExample(row) {
    const form = row.querySelector(".example-form");
    form.hidden = false;
    form.elements.label.focus();
  }

  async function act(index, action) {
    const row = rows[index];
    if (!row) return;
    select(index, false);
    if (action === "example") {
      openExample(row);
      return;
    }
    const body = action === "ambiguous" ? { action: "ambiguous", relabel: true } : { action };
    if (await resolve(row, body)) select(nextOpen(index));
  }

  rows.forEach((row, index) => {
    row.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (button) act(index, button.dataset.action);
      else if (!event.target.closest("form")) select(index, false);
    });
    const form = row.querySelector(".example-form");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (await send(row, form.action, { body: new FormData(form) })) {
        form.hidden = true;
        select(nextOpen(index));
      }
    });
    form.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        form.requestSubmit(); // runs the browser's checks first (a label and a reason)
      }
    });
  });

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target.closest && target.closest("input, textarea, select")) {
      if (event.key === "Escape") {
        const form = target.closest(".example-form");
        if (form) form.hidden = true;
        select(current);
      }
      return;
    }
    const keys = {
      a: () => act(current, "accept"),
      g: () => act(current, "keep"),
      m: () => act(current, "ambiguous"),
      e: () => act(current, "example"),
      j: () => select(current + 1),
      ArrowDown: () => select(current + 1),
      k: () => select(current - 1),
      ArrowUp: () => select(current - 1),
    };
    const handler = keys[event.key];
    if (handler) {
      event.preventDefault();
      handler();
    }
  });

  select(0, false);
})();
