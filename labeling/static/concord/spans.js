// The span editor: a text as token elements; mark spans (named entities) with the keyboard or
// the mouse. One component for the annotator's page and the reviewer's final spans.
//
// The page gives, as JSON in the editor's <script type="application/json">: text, tokens
// ([start, end] in code points, from labeling.spans.token_bounds), labels ({id, name, key,
// colour}) and spans ([start, end, label_id]) to start from. The spans leave as JSON
// [{start, end, label}] in the form's hidden input `spans`. Item text goes in with
// textContent only.
//
// Keys (handleKey; the annotator page routes them here, the reviewer's editor listens while
// focused): Left/Right move the token cursor, Shift+Left/Right (Home/End) extend the
// selection, a label's key marks the selection (over existing spans: it replaces those it
// overlaps, spans are flat; on a span with no selection: relabels it), Backspace/Delete
// remove the span(s) under the cursor or selection, Escape clears the selection. Mouse: drag
// or click, Shift+click, snapping to whole tokens; click a span for a menu (relabel, remove).
//
// Speed: a keystroke repaints only the token elements whose look changed (the old and new
// cursor, the selection's ends, a changed span), never the whole text.
(function () {
  "use strict";

  const editors = new WeakMap();

  class SpanEditor {
    constructor(root) {
      this.root = root;
      const data = JSON.parse(root.querySelector("script[type='application/json']").textContent);
      this.labels = data.labels;
      this.byId = new Map(this.labels.map((label) => [label.id, label]));
      this.tokens = data.tokens;
      this.chars = Array.from(data.text); // code points: Python's offsets, not UTF-16 units
      this.starts = data.starts || [];
      const n = this.tokens.length;
      this.owner = new Array(n).fill(null); // token -> its span {a, b, label} (b exclusive)
      this.cursor = 0;
      this.anchor = 0;
      this.dirty = [];
      this.doc = root.querySelector(".span-doc");
      this.status = root.querySelector(".span-status");
      const form = root.closest("form");
      this.input = form ? form.querySelector("input[name=spans]") : null;
      this.render();
      for (const [start, end, labelId] of data.spans) this.place(start, end, labelId);
      this.dirty = [[0, n - 1]];
      this.flush();
      this.changed(false);
      this.listen();
    }

    // ---- the model ------------------------------------------------------------------------

    get size() {
      return this.tokens.length;
    }

    selection() {
      return this.anchor <= this.cursor ? [this.anchor, this.cursor] : [this.cursor, this.anchor];
    }

    // A stored span (code points) on the tokens it touches: snapped, unknown labels dropped.
    place(start, end, labelId) {
      if (!this.byId.has(labelId) || !(end > start)) return;
      const first = this.firstTokenEndingAfter(start);
      let last = first;
      while (last + 1 < this.size && this.tokens[last + 1][0] < end) last += 1;
      if (first >= this.size || this.tokens[first][0] >= end) return;
      this.mark(first, last + 1, labelId);
    }

    firstTokenEndingAfter(offset) {
      let lo = 0;
      let hi = this.size;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.tokens[mid][1] <= offset) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    }

    // Start over from other spans (the reviewer's "Start from" buttons).
    reset(spans) {
      this.owner.fill(null);
      for (const [start, end, labelId] of spans) this.place(start, end, labelId);
      this.anchor = this.cursor;
      this.dirty = [[0, this.size - 1]];
      this.flush();
      this.changed(true);
    }

    unmark(span) {
      for (let i = span.a; i < span.b; i += 1) this.owner[i] = null;
      this.touch(span.a, span.b - 1);
    }

    // Tokens a..b-1 become one span; the spans it overlaps go (flat spans).
    mark(a, b, labelId) {
      for (let i = a; i < b; i += 1) if (this.owner[i]) this.unmark(this.owner[i]);
      const span = { a, b, label: labelId };
      for (let i = a; i < b; i += 1) this.owner[i] = span;
      this.touch(a, b - 1);
      return span;
    }

    spans() {
      const out = [];
      let previous = null;
      for (const span of this.owner) {
        if (span && span !== previous) out.push(span);
        previous = span;
      }
      return out;
    }

    text(a, b) {
      return this.chars.slice(this.tokens[a][0], this.tokens[b - 1][1]).join("");
    }

    // ---- actions ---------------------------------------------------------------------------

    moveTo(index, extend) {
      if (!this.size) return;
      const [oldA, oldB] = this.selection();
      this.touch(this.cursor, this.cursor);
      this.cursor = Math.max(0, Math.min(this.size - 1, index));
      if (!extend) this.anchor = this.cursor;
      const [newA, newB] = this.selection();
      this.touchChange(oldA, oldB, newA, newB);
      this.touch(this.cursor, this.cursor);
      this.flush();
      this.say();
      this.reveal();
    }

    // A long text: keep the cursor on screen.
    reveal() {
      const el = this.tokenEls[this.cursor];
      const box = el.getBoundingClientRect();
      if (box.top < 0 || box.bottom > window.innerHeight) el.scrollIntoView({ block: "nearest" });
    }

    // Repaint only where the selection grew or shrank (both ends), not all of it.
    touchChange(oldA, oldB, newA, newB) {
      if (oldA !== newA) this.touch(Math.min(oldA, newA), Math.max(oldA, newA));
      if (oldB !== newB) this.touch(Math.min(oldB, newB), Math.max(oldB, newB));
    }

    collapse() {
      const [a, b] = this.selection();
      if (a === b) return false;
      this.anchor = this.cursor;
      this.touch(a, b);
      this.flush();
      this.say();
      return true;
    }

    apply(labelId) {
      if (!this.size || !this.byId.has(labelId)) return;
      const [a, b] = this.selection();
      const here = this.owner[this.cursor];
      if (a === b && here) {
        here.label = labelId; // a label key on a span relabels it
        this.touch(here.a, here.b - 1);
      } else {
        this.mark(a, b + 1, labelId);
      }
      this.anchor = this.cursor;
      this.touch(a, b);
      this.flush();
      this.changed(true);
    }

    remove() {
      const [a, b] = this.selection();
      let removed = false;
      for (let i = a; i <= b; i += 1) {
        if (this.owner[i]) {
          this.unmark(this.owner[i]);
          removed = true;
        }
      }
      this.anchor = this.cursor;
      this.touch(a, b);
      this.flush();
      if (removed) this.changed(true);
      return removed;
    }

    labelForKey(key) {
      if (!key || key.length !== 1) return null;
      const lower = key.toLowerCase();
      return this.labels.find((label) => label.key && label.key.toLowerCase() === lower) || null;
    }

    // One key; true when the editor used it. Enter is the page's (submit).
    handleKey(key, shift) {
      if (!this.size) return false;
      if (this.menu && key !== "Shift") this.closeMenu();
      switch (key) {
        case "ArrowRight":
          this.moveTo(this.cursor + 1, shift);
          return true;
        case "ArrowLeft":
          this.moveTo(this.cursor - 1, shift);
          return true;
        case "Home":
          this.moveTo(0, shift);
          return true;
        case "End":
          this.moveTo(this.size - 1, shift);
          return true;
        case "Backspace":
        case "Delete":
          this.remove();
          return true;
        case "Escape":
          return this.collapse();
        default: {
          const label = this.labelForKey(key);
          if (!label) return false;
          this.apply(label.id);
          return true;
        }
      }
    }

    // ---- painting --------------------------------------------------------------------------

    render() {
      const fragment = document.createDocumentFragment();
      this.tokenEls = new Array(this.size);
      this.gapEls = new Array(Math.max(0, this.size - 1));
      let at = 0;
      for (let i = 0; i < this.size; i += 1) {
        const [start, end] = this.tokens[i];
        if (start > at) {
          const between = this.chars.slice(at, start).join("");
          if (i === 0) fragment.append(between);
          else {
            const gap = document.createElement("span");
            gap.className = "gap";
            gap.textContent = between;
            gap.dataset.gap = i - 1;
            this.gapEls[i - 1] = gap;
            fragment.append(gap);
          }
        }
        const el = document.createElement("span");
        el.className = "tok";
        el.dataset.i = i;
        el.textContent = this.chars.slice(start, end).join("");
        this.tokenEls[i] = el;
        fragment.append(el);
        at = end;
      }
      if (at < this.chars.length) fragment.append(this.chars.slice(at).join(""));
      this.doc.replaceChildren(fragment);
      this.doc.classList.add("span-tokens");
    }

    touch(a, b) {
      this.dirty.push([a, b]);
    }

    flush() {
      const [selA, selB] = this.selection();
      const selected = selA !== selB;
      for (const [from, to] of this.dirty) {
        const a = Math.max(0, from - 1);
        const b = Math.min(this.size - 1, to + 1);
        for (let i = a; i <= b; i += 1) this.paint(i, selected && i >= selA && i <= selB);
      }
      this.dirty = [];
    }

    paint(i, selected) {
      const span = this.owner[i];
      let css = "tok";
      let name = null;
      if (span) {
        const label = this.byId.get(span.label);
        css += ` span span-c${label.colour}`;
        if (i === span.a) css += " s-first";
        if (i === span.b - 1) {
          css += " s-last";
          name = label.name;
        }
      }
      if (selected) css += " sel";
      if (i === this.cursor) css += " cur";
      const el = this.tokenEls[i];
      if (el.className !== css) el.className = css;
      if (name === null) {
        if (el.dataset.label !== undefined) delete el.dataset.label;
      } else if (el.dataset.label !== name) el.dataset.label = name;
      const gap = this.gapEls[i];
      if (gap) {
        const [selA, selB] = this.selection();
        const next = this.owner[i + 1];
        let gapCss = "gap";
        if (span && span === next) gapCss += ` span span-c${this.byId.get(span.label).colour}`;
        if (selected && i + 1 <= selB && i >= selA) gapCss += " sel";
        if (gap.className !== gapCss) gap.className = gapCss;
      }
    }

    // The selection or the span under the cursor, in words, for everyone (aria-live).
    say() {
      if (!this.status) return;
      const [a, b] = this.selection();
      const here = this.owner[this.cursor];
      let line;
      if (a !== b) line = `Selected “${this.text(a, b + 1)}”: press a label's key to mark it.`;
      else if (here) {
        const name = this.byId.get(here.label).name;
        line = `${name}: “${this.text(here.a, here.b)}” (a label's key relabels it, Backspace removes it)`;
      } else line = `At “${this.text(this.cursor, this.cursor + 1)}”`;
      if (this.status.textContent !== line) this.status.textContent = line;
    }

    changed(announce) {
      const spans = this.spans();
      if (this.input) {
        this.input.value = JSON.stringify(
          spans.map((span) => ({
            start: this.tokens[span.a][0],
            end: this.tokens[span.b - 1][1],
            label: this.byId.get(span.label).name,
          })),
        );
      }
      this.root.dataset.count = spans.length;
      if (announce) this.say();
    }

    // ---- the mouse and the menu ------------------------------------------------------------

    tokenAt(target) {
      const el = target.closest ? target.closest(".tok, .gap") : null;
      if (!el || !this.doc.contains(el)) return null;
      return el.classList.contains("tok") ? Number(el.dataset.i) : Number(el.dataset.gap);
    }

    listen() {
      let down = null;
      let dragged = false;
      this.doc.addEventListener("mousedown", (event) => {
        if (event.button !== 0) return;
        const i = this.tokenAt(event.target);
        if (i === null) return;
        event.preventDefault(); // no native text selection: ours snaps to tokens
        this.closeMenu();
        if (this.root.hasAttribute("data-own-keys")) this.root.focus({ preventScroll: true });
        else if (document.activeElement && document.activeElement.matches("input, textarea")) {
          document.activeElement.blur(); // the page's keys come back to the text
        }
        down = i;
        dragged = event.shiftKey;
        this.moveTo(i, event.shiftKey);
      });
      this.doc.addEventListener("mouseover", (event) => {
        if (down === null) return;
        const i = this.tokenAt(event.target);
        if (i === null || i === this.cursor) return;
        dragged = true;
        this.moveTo(i, true);
      });
      this.onMouseUp = () => {
        if (down === null) return;
        const [a, b] = this.selection();
        const here = this.owner[this.cursor];
        if (a !== b) this.openMenu(this.tokenEls[this.cursor], null);
        else if (!dragged && here) this.openMenu(this.tokenEls[this.cursor], here);
        down = null;
      };
      document.addEventListener("mouseup", this.onMouseUp);
      this.root.addEventListener("click", (event) => {
        const button = event.target.closest("button");
        if (!button || !this.root.contains(button)) return;
        if (button.dataset.labelId) this.apply(Number(button.dataset.labelId));
        else if (button.classList.contains("span-remove")) this.remove();
        else if (button.dataset.start !== undefined) {
          this.reset(this.starts[button.dataset.start][1]);
          for (const other of this.root.querySelectorAll(".span-start")) {
            other.setAttribute("aria-pressed", other === button ? "true" : "false");
          }
        } else return;
        this.closeMenu();
      });
      // Buttons of the legend and the menu never take the focus: keys stay with the editor.
      this.root.addEventListener("mousedown", (event) => {
        if (event.target.closest("button")) event.preventDefault();
      });
      if (this.root.hasAttribute("data-own-keys")) {
        this.root.addEventListener("keydown", (event) => {
          if (event.ctrlKey || event.metaKey || event.altKey) return;
          if (event.target.closest("button") && (event.key === "Enter" || event.key === " ")) return;
          if (event.key === "Enter") {
            const submit = this.root.closest("form").querySelector("button[type=submit]");
            event.preventDefault();
            if (submit) submit.click();
            return;
          }
          if (this.handleKey(event.key, event.shiftKey)) event.preventDefault();
        });
      }
    }

    openMenu(anchorEl, span) {
      this.closeMenu();
      const menu = document.createElement("div");
      menu.className = "span-menu";
      menu.setAttribute("role", "menu");
      const title = document.createElement("div");
      title.className = "span-menu-title";
      title.textContent = span ? "Relabel or remove" : "Mark as";
      menu.append(title);
      for (const label of this.labels) {
        const button = document.createElement("button");
        button.type = "button";
        button.setAttribute("role", "menuitem");
        button.className = `span-apply span-c${label.colour}`;
        if (span && span.label === label.id) button.classList.add("current");
        button.dataset.labelId = label.id;
        if (label.key) {
          const kbd = document.createElement("kbd");
          kbd.textContent = label.key;
          button.append(kbd, " ");
        }
        button.append(label.name);
        menu.append(button);
      }
      if (span) {
        const remove = document.createElement("button");
        remove.type = "button";
        remove.setAttribute("role", "menuitem");
        remove.className = "span-remove";
        remove.textContent = "Remove";
        menu.append(remove);
      }
      const box = anchorEl.getBoundingClientRect();
      const rootBox = this.root.getBoundingClientRect();
      menu.style.left = `${Math.max(0, box.left - rootBox.left)}px`;
      menu.style.top = `${box.bottom - rootBox.top + 6}px`;
      this.root.append(menu);
      // Keep it inside the editor's width.
      const overflow = menu.getBoundingClientRect().right - rootBox.right;
      if (overflow > 0) menu.style.left = `${Math.max(0, box.left - rootBox.left - overflow)}px`;
      this.menu = menu;
    }

    closeMenu() {
      if (this.menu) this.menu.remove();
      this.menu = null;
    }
  }

  function mountAll(scope) {
    const found = scope.matches && scope.matches("[data-span-editor]") ? [scope] : [];
    for (const root of [...found, ...scope.querySelectorAll("[data-span-editor]")]) {
      if (!editors.has(root)) editors.set(root, new SpanEditor(root));
    }
  }

  window.ConcordSpans = {
    // The editor inside `scope` (the first one), or null.
    editorIn(scope) {
      const root = scope && scope.querySelector("[data-span-editor]");
      if (root && !editors.has(root)) mountAll(root);
      return root ? editors.get(root) : null;
    },
    mountAll,
  };

  document.addEventListener("mousedown", (event) => {
    // A click outside an open menu closes it.
    for (const menu of document.querySelectorAll(".span-menu")) {
      if (!menu.contains(event.target)) {
        const editor = editors.get(menu.closest("[data-span-editor]"));
        if (editor) editor.closeMenu();
      }
    }
  });
  // Mounted right after an htmx swap (before the first paint of the new content), not 20 ms
  // later at htmx:load, so the swapped text never shows without its editor.
  document.addEventListener("htmx:afterSwap", (event) => {
    if (event.target.isConnected) mountAll(event.target);
  });
  document.addEventListener("htmx:load", (event) => mountAll(event.detail.elt || event.target));
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", () => mountAll(document));
  } else mountAll(document);
})();
