// The sandbox page: an xterm.js terminal over a WebSocket, plus provisioning steps and the container log from a second one.
(function () {
  "use strict";

  const page = document.getElementById("sandbox-page");
  if (!page) return;

  const STARTING = new Set(["requested", "provisioning"]);
  // A sandbox only moves forward through these; a poll answered before a live event must not move the page back.
  const ORDER = { requested: 0, provisioning: 1, running: 2, stopping: 3, stopped: 4, failed: 4, expired: 4 };
  const FINAL = new Set(["stopped", "failed", "expired"]);
  const LOG_LINES_KEPT = 2000;
  // Close codes of sandbox/consumers.py and config/websockets.py.
  const CLOSE_UNAUTHENTICATED = 4401;
  const CLOSE_FORBIDDEN = 4403;
  const CLOSE_TOO_SLOW = 4408;
  const CLOSE_NOT_RUNNING = 4409;
  const CLOSE_TOO_MANY_SOCKETS = 4429;
  const TOO_MANY_SOCKETS_TEXT = "You have too many Sandcloud pages open at once. Close a sandbox or dashboard tab " +
    "you no longer need, then press Reconnect.";
  const ENDED_WORDS = {
    stopped: ["This sandbox has stopped", "It was stopped and its files were deleted."],
    expired: ["This sandbox has expired", "It reached its time limit and was stopped."],
    failed: ["This sandbox failed", "Something went wrong and it could not keep running."],
  };

  const readOnly = page.dataset.readOnly === "true";
  const encoder = new TextEncoder();
  let state = page.dataset.state;
  let reason = page.dataset.reason || "";

  function socketUrl(path) {
    return (window.location.protocol === "https:" ? "wss://" : "ws://") + window.location.host + path;
  }

  function backoff(attempt) {
    return Math.min(10000, 500 * Math.pow(2, attempt)) * (0.8 + Math.random() * 0.4);
  }

  // --- the terminal ---------------------------------------------------------------------------------------------

  const term = new window.Terminal({
    cursorBlink: !readOnly,
    disableStdin: readOnly,
    fontFamily: '"DejaVu Sans Mono", "Cascadia Mono", Menlo, Consolas, "Liberation Mono", monospace',
    fontSize: 14,
    lineHeight: 1.15,
    scrollback: 5000,
    theme: {
      background: "#0d1117", foreground: "#e6edf3", cursor: "#58a6ff", cursorAccent: "#0d1117",
      selectionBackground: "#264f78", black: "#484f58", red: "#ff7b72", green: "#3fb950", yellow: "#d29922",
      blue: "#58a6ff", magenta: "#bc8cff", cyan: "#39c5cf", white: "#b1bac4", brightBlack: "#6e7681",
      brightRed: "#ffa198", brightGreen: "#56d364", brightYellow: "#e3b341", brightBlue: "#79c0ff",
      brightMagenta: "#d2a8ff", brightCyan: "#56d4dd", brightWhite: "#ffffff",
    },
  });
  const fit = new window.FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(document.getElementById("terminal"));

  let terminal = null;         // the open WebSocket, if any
  let terminalAttempts = 0;
  let terminalRetry = null;
  let shellExited = false;

  const connection = document.getElementById("terminal-connection");
  function showConnection(status, label) {
    connection.dataset.connection = status;
    connection.querySelector(".sc-connection-label").textContent = label;
  }

  function sendResize() {
    if (readOnly || !terminal || terminal.readyState !== WebSocket.OPEN) return;
    terminal.send(JSON.stringify({ type: "resize", cols: term.cols, rows: term.rows }));
  }

  function fitTerminal() {
    try {
      fit.fit();
    } catch (error) {
      return; // hidden or zero-sized for a moment; the next resize fits it
    }
  }

  function connectTerminal() {
    if (terminal || state !== "running") return;
    clearTimeout(terminalRetry);
    shellExited = false;
    showConnection("connecting", terminalAttempts ? "Reconnecting…" : "Connecting…");
    const socket = new WebSocket(socketUrl(page.dataset.terminalPath));
    socket.binaryType = "arraybuffer";
    terminal = socket;
    socket.addEventListener("open", function () {
      terminalAttempts = 0;
      showConnection("connected", readOnly ? "Watching" : "Connected");
      hideBanner("connection");
      // tmux redraws the whole screen on attach: start from a clean one so a reconnect does not duplicate it.
      term.reset();
      fitTerminal();
      sendResize();
      if (!readOnly) term.focus();
    });
    socket.addEventListener("message", function (event) {
      if (typeof event.data === "string") {
        showNotice(JSON.parse(event.data));
      } else {
        term.write(new Uint8Array(event.data));
      }
    });
    socket.addEventListener("close", function (event) {
      if (terminal === socket) terminal = null;
      terminalClosed(event.code);
    });
  }

  function terminalClosed(code) {
    showConnection("offline", "Disconnected");
    if (code === CLOSE_UNAUTHENTICATED) {
      showBanner("danger", "You are signed out. Sign in again to use the terminal.", "Sign in",
                 function () { window.location.reload(); });
      return;
    }
    if (code === CLOSE_FORBIDDEN) {
      showBanner("danger", "This sandbox belongs to someone else; you cannot open its terminal.");
      return;
    }
    if (code === CLOSE_TOO_MANY_SOCKETS) {
      showBanner("warning", TOO_MANY_SOCKETS_TEXT, "Reconnect", connectTerminal, "connection");
      return;
    }
    if (code === CLOSE_NOT_RUNNING || state !== "running") return; // the stream says when it runs (again)
    if (shellExited) {
      showBanner("info", "The shell exited.", "Open a new shell", connectTerminal);
      return;
    }
    const delay = backoff(terminalAttempts++);
    showBanner("warning", "Lost the connection to the terminal. Reconnecting in " + Math.ceil(delay / 1000) + " s…",
               "Reconnect now", connectTerminal, "connection");
    showConnection("connecting", "Reconnecting…");
    terminalRetry = setTimeout(connectTerminal, delay);
  }

  function disconnectTerminal() {
    clearTimeout(terminalRetry);
    if (terminal) {
      const socket = terminal;
      terminal = null;
      socket.close();
    }
    showConnection("idle", "Not connected");
  }

  function showNotice(notice) {
    if (notice.type === "exit") {
      shellExited = true;
      showBanner("info", notice.message);
    } else if (notice.type === "error") {
      showBanner("danger", notice.message);
    } else if (notice.type === "info") {
      showBanner("info", notice.message, null, null, "info", 6000);
    }
  }

  // The editor (editor.js) refreshes its file tree a moment after a command line is entered: it may have changed files.
  function announceEnter(data) {
    if (data.indexOf("\r") !== -1) document.dispatchEvent(new CustomEvent("sandcloud:terminal-enter"));
  }

  term.onData(function (data) {
    if (!readOnly && terminal && terminal.readyState === WebSocket.OPEN) {
      terminal.send(encoder.encode(data));
      announceEnter(data);
    }
  });
  term.onBinary(function (data) {
    if (!readOnly && terminal && terminal.readyState === WebSocket.OPEN) {
      terminal.send(Uint8Array.from(data, function (c) { return c.charCodeAt(0) & 0xff; }));
    }
  });
  term.onResize(sendResize);

  // Tab belongs to the shell (completion), so a keyboard user leaves the terminal with Escape then Tab (or Shift+Tab),
  // as in the CodeMirror editor beside it. The Escape is held back for a moment: if Tab follows, the shell never sees
  // it (bash would take it as Meta and change the meaning of the next key); otherwise it is sent a little late.
  const terminalElement = document.getElementById("terminal");
  const MODIFIER_KEYS = new Set(["Shift", "Control", "Alt", "Meta", "CapsLock"]);
  const ESCAPE_HELD_MS = 400;
  const ESCAPE_LEAVES_MS = 2000;  // as long as CodeMirror waits for the Tab after an Escape
  let escapeAt = 0;
  let escapeHeld = null;

  function escapeSend() {
    if (!escapeHeld) return;
    clearTimeout(escapeHeld);
    escapeHeld = null;
    if (!readOnly && terminal && terminal.readyState === WebSocket.OPEN) terminal.send(encoder.encode("\x1b"));
  }

  function focusBesideTerminal(backwards) {
    const candidates = Array.from(document.querySelectorAll(
      "a[href], button, input, select, textarea, summary, [tabindex], [contenteditable='true']"
    )).filter(function (element) {
      return element.tabIndex >= 0 && !element.disabled && !terminalElement.contains(element) &&
        !element.closest("[hidden], [inert]") && element.getClientRects().length > 0;
    });
    const FOLLOWING = Node.DOCUMENT_POSITION_FOLLOWING;
    const after = candidates.filter(function (element) { return terminalElement.compareDocumentPosition(element) & FOLLOWING; });
    const before = candidates.filter(function (element) { return !(terminalElement.compareDocumentPosition(element) & FOLLOWING); });
    // Past either end of the page the focus wraps around, as it would through the browser's own controls.
    const target = backwards ? (before[before.length - 1] || after[after.length - 1]) : (after[0] || before[0]);
    if (target) target.focus();
  }

  term.attachCustomKeyEventHandler(function (event) {
    if (event.type !== "keydown" || MODIFIER_KEYS.has(event.key)) return true;
    const plain = !event.ctrlKey && !event.altKey && !event.metaKey;
    if (event.key === "Tab" && plain && Date.now() - escapeAt < ESCAPE_LEAVES_MS) {
      clearTimeout(escapeHeld);
      escapeHeld = null;  // the Escape meant "leave": it is dropped
      escapeAt = 0;
      event.preventDefault();
      focusBesideTerminal(event.shiftKey);
      return false;
    }
    escapeSend();  // any other key: the held Escape goes first
    if (event.key === "Escape" && plain && !event.shiftKey) {
      escapeAt = Date.now();
      escapeHeld = setTimeout(escapeSend, ESCAPE_HELD_MS);
      return false;
    }
    escapeAt = 0;
    return true;
  });
  term.textarea.addEventListener("blur", escapeSend);

  // Click-to-run code blocks (lab pages) ask for their command to be typed into this terminal.
  document.addEventListener("sandcloud:terminal-input", function (event) {
    if (readOnly || !terminal || terminal.readyState !== WebSocket.OPEN) return;
    terminal.send(encoder.encode(event.detail.data));
    announceEnter(event.detail.data);
    event.detail.handled = true;
    term.focus();
  });

  let resizeTimer = null;
  new ResizeObserver(function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(fitTerminal, 60);
  }).observe(document.querySelector(".sc-terminal-area"));
  // Showing or hiding the editor beside the terminal resizes it; fit at once rather than after the observer's pause.
  document.addEventListener("sandcloud:layout-changed", fitTerminal);
  fitTerminal();

  // --- the banner over the terminal ------------------------------------------------------------------------------

  const banner = document.getElementById("terminal-banner");
  let bannerTimer = null;

  function showBanner(level, text, actionLabel, action, topic, hideAfterMs) {
    clearTimeout(bannerTimer);
    banner.className = "sc-banner sc-banner-" + level;
    banner.dataset.topic = topic || "";
    banner.querySelector(".sc-banner-text").textContent = text;
    const button = banner.querySelector(".sc-banner-action");
    button.hidden = !actionLabel;
    button.textContent = actionLabel || "";
    button.onclick = action ? function () { hideBanner(); action(); } : null;
    banner.hidden = false;
    if (hideAfterMs) bannerTimer = setTimeout(hideBanner, hideAfterMs);
  }

  function hideBanner(topic) {
    if (topic && banner.dataset.topic !== topic) return;
    banner.hidden = true;
  }

  banner.querySelector(".sc-banner-close").addEventListener("click", function () { hideBanner(); });

  // --- state: overlay, stop button, terminal ----------------------------------------------------------------------

  const overlay = document.getElementById("terminal-overlay");
  const progressBox = overlay.querySelector('[data-overlay="progress"]');
  const endedBox = overlay.querySelector('[data-overlay="ended"]');
  const stopForm = document.getElementById("stop-form");

  function latestStepMessage() {
    return steps.length ? steps[steps.length - 1].message : "Waiting for a worker.";
  }

  function applyState(newState, newReason) {
    if (ORDER[newState] < ORDER[state]) return false;
    const changed = newState !== state;
    state = newState;
    if (newReason !== undefined) reason = newReason || "";
    page.dataset.state = state;
    stopForm.hidden = !(STARTING.has(state) || state === "running");
    if (STARTING.has(state) || state === "stopping") {
      overlay.hidden = false;
      endedBox.hidden = true;
      progressBox.hidden = false;
      progressBox.querySelector("[data-overlay-title]").textContent =
        state === "stopping" ? "Stopping your sandbox…" : "Starting your sandbox…";
      progressBox.querySelector("[data-overlay-detail]").textContent = latestStepMessage();
      if (state === "stopping") disconnectTerminal();
      else showConnection("idle", "Waiting for the sandbox");
    } else if (state === "running") {
      overlay.hidden = true;
      connectTerminal();
    } else if (FINAL.has(state)) {
      disconnectTerminal();
      hideBanner();
      const words = ENDED_WORDS[state];
      overlay.hidden = false;
      progressBox.hidden = true;
      endedBox.hidden = false;
      endedBox.querySelector("[data-overlay-title]").textContent = words[0];
      endedBox.querySelector("[data-overlay-detail]").textContent = reason || words[1];
      endedBox.querySelector("[data-overlay-icon]").className =
        "bi fs-1 " + (state === "failed" ? "bi-exclamation-octagon text-danger" : state === "expired"
          ? "bi-hourglass-bottom text-warning" : "bi-power text-secondary");
    }
    renderSteps();
    return changed;
  }

  // The polled status partial is the database's word: it catches up if a live event was lost. Only that partial: a
  // lab's check result also carries data-status (the attempt's), which is no sandbox state.
  document.body.addEventListener("htmx:afterSwap", function (event) {
    const status = event.detail.target.querySelector("[data-status][data-state]");
    if (status) applyState(status.dataset.state, status.dataset.reason);
    tickCountdowns();
  });

  // --- provisioning steps ------------------------------------------------------------------------------------------

  const steps = [];
  const seenSteps = new Set();
  const stepList = document.getElementById("sandbox-steps");
  let streamConnected = false;

  function formatTime(unixSeconds) {
    return new Date(unixSeconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  }

  function addStep(event) {
    const key = event.at + "|" + event.state + "|" + event.message;
    if (seenSteps.has(key)) return false;
    seenSteps.add(key);
    steps.push(event);
    steps.sort(function (a, b) { return a.at - b.at; });
    return true;
  }

  function renderSteps() {
    stepList.replaceChildren();
    if (!steps.length) {
      const item = document.createElement("li");
      item.className = "sc-step text-body-secondary";
      item.innerHTML = streamConnected
        ? '<span class="sc-step-icon"><i class="bi bi-dot"></i></span><span>No progress recorded.</span>'
        : '<span class="sc-step-icon"><span class="spinner-border spinner-border-sm" aria-hidden="true"></span></span><span>Connecting…</span>';
      stepList.append(item);
      return;
    }
    steps.forEach(function (step, index) {
      const last = index === steps.length - 1;
      const item = document.createElement("li");
      item.className = "sc-step" + (step.level === "error" ? " sc-step-error" : "") + (last ? " sc-step-current" : "");
      const icon = document.createElement("span");
      icon.className = "sc-step-icon";
      if (step.level === "error") {
        icon.innerHTML = '<i class="bi bi-x-circle-fill text-danger"></i>';
      } else if (last && (STARTING.has(state) || state === "stopping")) {
        icon.innerHTML = '<span class="spinner-border spinner-border-sm text-primary" aria-hidden="true"></span>';
      } else {
        icon.innerHTML = '<i class="bi bi-check-circle-fill text-success"></i>';
      }
      const text = document.createElement("span");
      text.className = "sc-step-text";
      text.textContent = step.message;
      const time = document.createElement("time");
      time.className = "sc-step-time";
      time.dateTime = new Date(step.at * 1000).toISOString();
      time.textContent = formatTime(step.at);
      item.append(icon, text, time);
      stepList.append(item);
    });
    stepList.scrollTop = stepList.scrollHeight;
  }

  // --- the container log -----------------------------------------------------------------------------------------

  const logPanel = document.getElementById("sandbox-log");
  const logCount = document.getElementById("log-count");
  const ANSI = /\x1b\[[0-9;?]*[ -\/]*[@-~]|\x1b\][^\x07]*(\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\r/g;
  let logLines = 0;

  function appendLog(lines, className) {
    const nearBottom = logPanel.scrollHeight - logPanel.scrollTop - logPanel.clientHeight < 40;
    const placeholder = logPanel.querySelector(".sc-log-placeholder");
    if (placeholder) placeholder.remove();
    const fragment = document.createDocumentFragment();
    lines.forEach(function (line) {
      const row = document.createElement("div");
      row.className = "sc-log-line" + (className ? " " + className : "");
      row.textContent = line.replace(ANSI, "");
      fragment.append(row);
    });
    logPanel.append(fragment);
    if (!className) logLines += lines.length;
    while (logPanel.childElementCount > LOG_LINES_KEPT) logPanel.firstElementChild.remove();
    logCount.textContent = logLines + (logLines === 1 ? " line" : " lines");
    if (nearBottom) logPanel.scrollTop = logPanel.scrollHeight;
  }

  function clearLog() {
    logPanel.replaceChildren();
    logLines = 0;
  }

  // --- the stream of events and log lines --------------------------------------------------------------------------

  let streamAttempts = 0;
  let streamOpenedBefore = false;

  function connectStream() {
    const socket = new WebSocket(socketUrl(page.dataset.streamPath));
    socket.addEventListener("open", function () {
      streamAttempts = 0;
      streamConnected = true;
      // The server replays the log's tail on every connect: start the panel over rather than repeat lines.
      if (streamOpenedBefore) clearLog();
      streamOpenedBefore = true;
    });
    socket.addEventListener("message", function (event) {
      const message = JSON.parse(event.data);
      if (message.type === "event") {
        if (addStep(message)) {
          if (!message.replay && message.state !== state) {
            const ending = message.state === "failed" || message.state === "expired";
            applyState(message.state, ending ? message.message : undefined);
            document.body.dispatchEvent(new Event("sandbox-changed"));
          } else {
            applyState(state);
          }
        }
      } else if (message.type === "state") {
        if (applyState(message.state, message.reason)) document.body.dispatchEvent(new Event("sandbox-changed"));
      } else if (message.type === "log") {
        appendLog(message.lines);
      } else if (message.type === "dropped") {
        appendLog(["… " + message.count + " lines skipped (they came faster than this page could show them)"],
                  "sc-log-note");
      } else if (message.type === "log-error") {
        appendLog([message.message], "sc-log-error");
      }
    });
    socket.addEventListener("close", function (event) {
      streamConnected = false;
      if (event.code === CLOSE_UNAUTHENTICATED || event.code === CLOSE_FORBIDDEN || FINAL.has(state)) return;
      if (event.code === CLOSE_TOO_MANY_SOCKETS && streamAttempts === 0) {
        appendLog(["The live log is paused: you have too many Sandcloud pages open at once. It comes back by " +
                   "itself once you close one."], "sc-log-error");
      } else if (event.code === CLOSE_TOO_SLOW) {
        appendLog(["The live log fell too far behind and reconnected; some lines were skipped."], "sc-log-note");
      }
      setTimeout(connectStream, backoff(streamAttempts++));
    });
  }

  // --- time left ---------------------------------------------------------------------------------------------------

  function formatLeft(seconds) {
    if (seconds <= 0) return "no time";
    const hours = Math.floor(seconds / 3600);
    const minutes = Math.floor((seconds % 3600) / 60);
    if (hours) return hours + " h " + minutes + " min";
    if (minutes >= 5) return minutes + " min";
    return minutes + ":" + String(seconds % 60).padStart(2, "0");
  }

  function tickCountdowns() {
    document.querySelectorAll("[data-expires-at]").forEach(function (element) {
      const left = Math.round((Date.parse(element.dataset.expiresAt) - Date.now()) / 1000);
      element.textContent = formatLeft(left);
      element.classList.toggle("text-danger", left < 300);
      element.classList.toggle("fw-semibold", left < 300);
    });
  }

  setInterval(tickCountdowns, 1000);
  tickCountdowns();
  applyState(state, reason);
  connectStream();
})();
