// The lab page: click-to-run code blocks, and check results arriving on the sandbox's event stream.
(function () {
  "use strict";

  const lab = document.querySelector(".sc-lab");
  if (!lab) return;

  // --- click-to-run: ```run blocks type their command into the terminal ------------------------------------------
  // sandbox.js owns the terminal socket; it answers "sandcloud:terminal-input" by sending the text as terminal input
  // and setting detail.handled. Without a terminal the command is copied to the clipboard instead.
  function decorateRunBlocks(root) {
    root.querySelectorAll("pre.sc-run").forEach(function (block) {
      if (block.querySelector(".sc-run-button")) return;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "btn btn-sm btn-primary sc-run-button";
      button.innerHTML = '<i class="bi bi-play-fill" aria-hidden="true"></i> Run';
      button.title = "Type this into the terminal";
      button.addEventListener("click", function () {
        const detail = { data: block.dataset.run + "\r", handled: false };
        document.dispatchEvent(new CustomEvent("sandcloud:terminal-input", { detail: detail }));
        if (!detail.handled && navigator.clipboard) {
          navigator.clipboard.writeText(block.dataset.run);
          button.textContent = "Copied";
          setTimeout(function () { button.innerHTML = '<i class="bi bi-play-fill" aria-hidden="true"></i> Run'; }, 1500);
        }
      });
      block.appendChild(button);
    });
  }

  decorateRunBlocks(document);
  document.body.addEventListener("htmx:afterSwap", function (event) { decorateRunBlocks(event.detail.target.parentNode || document); });

  // --- check results: redraw the step panel when the stream says an attempt finished ---------------------------
  const page = document.getElementById("sandbox-page");
  if (!page || !page.dataset.streamPath) return;

  function refreshPanel() {
    const panel = document.getElementById("step-panel");
    if (panel && window.htmx) window.htmx.ajax("GET", panel.dataset.panelUrl, { target: "#step-panel", swap: "outerHTML" });
  }

  // The Check button is drawn only while the sandbox runs, and a lab's sandbox is usually still starting when the page
  // is first drawn: redraw the step whenever sandbox.js reports that the sandbox's state changed.
  document.body.addEventListener("sandbox-changed", refreshPanel);

  let attempts = 0;
  function connect() {
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + page.dataset.streamPath;
    const socket = new WebSocket(url);
    socket.addEventListener("open", function () { attempts = 0; });
    socket.addEventListener("message", function (message) {
      const data = JSON.parse(message.data);
      if (data.type === "event" && data.kind === "attempt.result" && !data.replay) refreshPanel();
    });
    socket.addEventListener("close", function (event) {
      if (event.code >= 4400 && event.code < 4500) return;
      attempts += 1;
      setTimeout(connect, Math.min(10000, 500 * Math.pow(2, attempts)));
    });
  }
  connect();
})();
