// PLUS kiosk — on-screen keyboard injected into every page of the kiosk browser.
// Runs in an isolated JavaScript world: pages cannot read or change this code,
// only the DOM (which is how it types into their forms). Big keys (64 px), a
// French layout with the accents residents need, no dependency.
(() => {
  if (window.__plusKeyboard) return;
  window.__plusKeyboard = true;
  const TYPES = new Set(["text", "email", "password", "search", "tel", "url", "number", ""]);
  const ROWS = [
    ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "⌫"],
    ["a", "z", "e", "r", "t", "y", "u", "i", "o", "p", "é"],
    ["q", "s", "d", "f", "g", "h", "j", "k", "l", "m", "è"],
    ["⇧", "w", "x", "c", "v", "b", "n", "à", "ç", "ù", "@"],
    [".", "-", "_", "'", " ", "↵", "▼"],
  ];
  let target = null;
  let shift = false;
  const host = document.createElement("div");
  host.id = "plus-kiosk-keyboard";
  const root = host.attachShadow({ mode: "closed" });
  root.innerHTML = `<style>
    :host { all: initial; }
    /* Fixed geometry: 5 rows of 64 px keys, 8 px apart, docked at the bottom; keys get
       narrower (never under 48 px) when the guide panel leaves the page less room. */
    .kb { position: fixed; left: 0; right: 0; bottom: 0; z-index: 2147483647;
          background: #1d2733; padding: 8px; display: none; font-family: sans-serif;
          box-shadow: 0 -4px 16px rgba(0,0,0,.4); flex-direction: column; gap: 8px; }
    .kb.open { display: flex; }
    .row { display: flex; justify-content: center; gap: 8px; height: 64px; }
    .kb { --key: min(64px, max(48px, calc((100vw - 96px) / 11))); }
    button { width: var(--key); height: 64px; padding: 0; font: 30px "DejaVu Sans", sans-serif; border-radius: 10px;
             border: 0; background: #f4f6f8; color: #111; touch-action: manipulation; }
    button.wide { width: calc(var(--key) * 5); }
    button.action { background: #ffd23f; }
  </style><div class="kb" part="keyboard"></div>`;
  const board = root.querySelector(".kb");

  function render() {
    board.innerHTML = "";
    for (const keys of ROWS) {
      const row = document.createElement("div");
      row.className = "row";
      for (const key of keys) {
        const button = document.createElement("button");
        button.type = "button";
        button.dataset.key = key;
        button.textContent = key === " " ? "espace" : (shift && key.length === 1 ? key.toUpperCase() : key);
        if (key === " ") button.className = "wide";
        if (["⌫", "⇧", "↵", "▼"].includes(key)) button.className = "action";
        row.appendChild(button);
      }
      board.appendChild(row);
    }
  }

  function insert(text) {
    if (!target) return;
    const start = target.selectionStart ?? target.value.length;
    const end = target.selectionEnd ?? target.value.length;
    try {
      target.setRangeText(text, start, end, "end");
    } catch (e) {  // e.g. type=number or email have no selection API
      target.value = target.value + text;
    }
    target.dispatchEvent(new InputEvent("input", { bubbles: true, data: text }));
  }

  function press(key) {
    if (!target) return;
    if (key === "⌫") {
      const start = target.selectionStart ?? target.value.length;
      const end = target.selectionEnd ?? target.value.length;
      try {
        if (start === end && start > 0) target.setRangeText("", start - 1, end, "end");
        else target.setRangeText("", start, end, "end");
      } catch (e) { target.value = target.value.slice(0, -1); }
      target.dispatchEvent(new InputEvent("input", { bubbles: true }));
    } else if (key === "⇧") {
      shift = !shift; render();
    } else if (key === "↵") {
      target.dispatchEvent(new Event("change", { bubbles: true }));
      if (target.form && target.tagName !== "TEXTAREA") target.form.requestSubmit();
      else if (target.tagName === "TEXTAREA") insert("\n");
    } else if (key === "▼") {
      close();
    } else {
      insert(shift ? key.toUpperCase() : key);
      if (shift) { shift = false; render(); }
    }
  }

  function editable(element) {
    if (!element) return false;
    if (element.tagName === "TEXTAREA") return !element.readOnly;
    if (element.tagName === "INPUT") return TYPES.has((element.getAttribute("type") || "").toLowerCase()) && !element.readOnly;
    return element.isContentEditable === true && false;
  }

  function open(element) {
    target = element;
    board.classList.add("open");
    document.documentElement.style.paddingBottom = board.offsetHeight + "px";
    element.scrollIntoView({ block: "center" });
  }

  function close() {
    board.classList.remove("open");
    document.documentElement.style.paddingBottom = "";
    target = null;
  }

  board.addEventListener("pointerdown", (event) => {
    event.preventDefault();  // keep the focus in the form field
    const button = event.composedPath().find((node) => node.dataset && node.dataset.key !== undefined);
    if (button) press(button.dataset.key);
  });
  document.addEventListener("focusin", (event) => { if (editable(event.target)) open(event.target); }, true);
  document.addEventListener("focusout", (event) => {
    setTimeout(() => { if (!editable(document.activeElement)) close(); }, 150);
  }, true);

  function attach() {
    if (!document.body) return setTimeout(attach, 50);
    document.body.appendChild(host);
    render();
    if (editable(document.activeElement)) open(document.activeElement);
  }
  attach();
})();
