// The instructor dashboard's live progress: attempts arrive over a WebSocket and recolour their cell.
(function () {
  const script = document.currentScript;
  const badge = document.getElementById("live-badge");
  const matrix = document.getElementById("matrix");
  let delay = 500;

  function setBadge(state, text) {
    badge.dataset.state = state;
    badge.querySelector("span").textContent = text;
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + script.dataset.socket);
    socket.onopen = function () {
      delay = 500;
      setBadge("live", "Live");
      // Messages sent while we were away are gone (the channel layer does not keep them): re-read the grid.
      htmx.trigger(matrix, "sc:resync");
    };
    socket.onmessage = function (event) {
      const message = JSON.parse(event.data);
      if (message.type !== "attempt") return;
      const cell = matrix.querySelector(`[data-learner="${message.learner}"][data-step="${message.step}"] .sc-cell`);
      if (!cell) { htmx.trigger(matrix, "sc:resync"); return; }
      const status = message.passed ? "passed" : (message.status === "pending" || message.status === "running") ? "pending" : "tried";
      cell.className = "sc-cell sc-cell-" + status + " sc-cell-flash";
      if (status !== "pending") htmx.trigger(matrix, "sc:resync");
    };
    socket.onclose = function (event) {
      if (event.code === 4403 || event.code === 4401) { setBadge("off", "Not allowed"); return; }
      // 4429: this user has too many sockets open (config/websockets.py); retrying would be refused the same way.
      if (event.code === 4429) {
        setBadge("off", "Paused: too many Sandcloud pages open. Close one and reload.");
        return;
      }
      setBadge("off", "Reconnecting…");
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 10000);
    };
  }
  connect();
})();
