// The live viewer: Socket.IO first (WebSocket, else long polling), plain polling of
// /api/qr/current when Socket.IO cannot connect. No framework, no build step.
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("qrlp-config").textContent);
  var img = document.getElementById("qr");
  var seqEl = document.getElementById("seq");
  var timeEl = document.getElementById("time");
  var countEl = document.getElementById("countdown");
  var stateEl = document.getElementById("state");
  var form = document.getElementById("user-form");
  var input = document.getElementById("user-text");
  var msg = document.getElementById("user-msg");
  if (cfg.user_text === false) form.hidden = true;
  var params = new URLSearchParams(location.search);
  if (params.get("bg")) {
    var bg = params.get("bg");
    document.body.style.setProperty("--stream-bg", bg === "transparent" ? "transparent" : "#" + bg.replace(/[^0-9a-fA-F]/g, ""));
  }

  var interval = 1;
  var nextAt = 0;
  var lastSeq = null;
  var updates = 0;
  var socket = null;
  var pollTimer = null;

  function setState(state, text) {
    stateEl.dataset.state = state;
    stateEl.textContent = text;
    document.body.dataset.connection = state;
  }

  function show(p) {
    if (!p || !p.qr_image) return;
    var seq = p.sequence_number != null ? p.sequence_number : (p.qr_data && p.qr_data.sequence_number);
    if (lastSeq !== null && seq === lastSeq) return;
    lastSeq = seq;
    updates += 1;
    img.src = p.qr_image;
    img.alt = "Live QR code, frame " + seq;
    img.dataset.sequence = String(seq);
    img.dataset.frame = p.frame || "";
    document.body.dataset.updates = String(updates);
    seqEl.textContent = "#" + seq;
    var ts = (p.qr_data && p.qr_data.timestamp) || p.timestamp || "";
    timeEl.textContent = ts ? new Date(ts).toLocaleTimeString() : "–";
    if (p.interval_seconds) interval = p.interval_seconds;
    nextAt = Date.now() + interval * 1000;
  }

  function tick() {
    if (nextAt) {
      var left = Math.max(0, (nextAt - Date.now()) / 1000);
      countEl.textContent = left.toFixed(interval < 10 ? 1 : 0) + " s";
    }
    requestAnimationFrame(tick);
  }
  requestAnimationFrame(tick);

  function say(text, isError) {
    msg.textContent = text;
    msg.className = "msg" + (isError ? " error" : "");
  }

  function poll() {
    fetch(cfg.api + "/api/qr/current", { cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(show)
      .catch(function () {});
  }

  function startPolling() {
    if (pollTimer) return;
    setState("fallback", "polling (fallback)");
    poll();
    pollTimer = setInterval(poll, Math.max(500, interval * 1000));
  }

  function stopPolling() {
    if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
  }

  if (typeof io === "function") {
    socket = io(cfg.namespace, { path: cfg.socket_path, auth: cfg.auth || {}, transports: ["websocket", "polling"] });
    socket.on("connect", function () {
      stopPolling();
      var t = socket.io.engine && socket.io.engine.transport ? socket.io.engine.transport.name : "";
      setState("live", "live" + (t ? " (" + t + ")" : ""));
      socket.emit("request_qr_update");
    });
    socket.on("disconnect", function () { setState("down", "reconnecting…"); startPolling(); });
    socket.on("connect_error", function () { startPolling(); });
    socket.on("qr_update", show);
    socket.on("user_data_updated", function (d) {
      say(d.user_data ? "Text set: the next frame carries it." : "Text cleared.", false);
    });
    socket.on("user_data_error", function (e) { say(e.error || "The text was refused.", true); });
    setTimeout(function () { if (!socket.connected) startPolling(); }, 4000);
  } else {
    startPolling();
  }

  function sendText(text) {
    if (Array.from(text).length > 500) { say("User data too long (max 500 characters)", true); return; }
    if (socket && socket.connected) {
      socket.emit("update_user_data", { user_text: text });
      return;
    }
    fetch(cfg.api + "/api/user-data", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user_text: text })
    }).then(function (r) { return r.json().then(function (b) { return [r.ok, b]; }); })
      .then(function (x) { say(x[0] ? (text ? "Text set: the next frame carries it." : "Text cleared.") : (x[1].error || "Refused"), !x[0]); })
      .catch(function () { say("The server could not be reached.", true); });
  }
  form.addEventListener("submit", function (e) { e.preventDefault(); sendText(input.value); });
  document.getElementById("user-clear").addEventListener("click", function () { input.value = ""; sendText(""); });
})();
