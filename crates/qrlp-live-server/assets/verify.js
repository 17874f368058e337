// The verify page: paste, upload or camera capture, then POST /api/verify and show each
// layer with an overall verdict.
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("qrlp-config").textContent);
  var out = document.getElementById("result");

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text != null) e.textContent = text;
    return e;
  }

  function clear() { while (out.childNodes.length > 1) out.removeChild(out.lastChild); }

  function row(table, name, state, note) {
    var tr = el("tr");
    tr.appendChild(el("th", { scope: "row" }, name));
    var label = state === true ? "pass" : state === false ? "fail" : "n/a";
    tr.appendChild(el("td", { "class": state === true ? "pass" : state === false ? "fail" : "na" },
      (state === true ? "✓ " : state === false ? "✗ " : "") + label));
    tr.appendChild(el("td", {}, note || ""));
    table.appendChild(tr);
  }

  function render(status, body) {
    clear();
    if (!body || body.valid === undefined) {
      var box = el("div", { "class": "verdict invalid", id: "verdict", "data-valid": "false" }, "Not a QRLP frame");
      box.appendChild(el("small", {}, (body && (body.error + (body.details ? ": " + (typeof body.details === "string" ? body.details : JSON.stringify(body.details)) : ""))) || ("HTTP " + status)));
      out.appendChild(box);
      return;
    }
    var d = body.details || {};
    var v = el("div", { "class": "verdict " + (body.valid ? "valid" : "invalid"), id: "verdict", "data-valid": String(body.valid) },
      body.valid ? "✓ Valid: authentic and current" : "✗ Invalid");
    v.appendChild(el("small", {}, body.message));
    out.appendChild(v);
    var facts = el("dl", { "class": "facts" });
    function fact(k, val) { var div = el("div"); div.appendChild(el("dt", {}, k)); div.appendChild(el("dd", {}, val)); facts.appendChild(div); }
    fact("Key id", d.key_id || "–");
    fact("Algorithm", d.algorithm || "–");
    fact("Age", d.age_ms != null ? (d.age_ms / 1000).toFixed(1) + " s" : "–");
    fact("Frame", d.sequence_number != null ? "#" + d.sequence_number : "–");
    fact("Reason", d.reason ? d.reason.code : "–");
    out.appendChild(facts);
    var t = el("table", { "class": "layers" });
    var head = el("tr");
    ["Layer", "Result", "Note"].forEach(function (h) { head.appendChild(el("th", { scope: "col" }, h)); });
    t.appendChild(head);
    row(t, "Frame structure", d.valid_json, d.format ? d.format + " frame" : "");
    row(t, "Digital signature", d.signature_verified, d.algorithm || "");
    row(t, "HMAC integrity", d.hmac_verified, "");
    row(t, "Identity", d.identity_verified, "");
    row(t, "Time", d.time_verified, d.age_ms != null ? "made " + (d.age_ms / 1000).toFixed(1) + " s ago" : "");
    row(t, "Blockchain anchors", d.blockchain_verified ? true : null, d.blockchain_verified ? "" : "no current anchor");
    row(t, "Not replayed", d.replayed ? false : true, d.replayed ? "seen before" : "");
    row(t, "Encrypted user data", d.encrypted ? true : null, "");
    out.appendChild(t);
    if (d.user_data && d.user_data.user_text) out.appendChild(el("p", {}, "User text: " + d.user_data.user_text));
    if (body.decoded_text) out.appendChild(el("p", { "class": "hint" }, "Read from the image: " + body.decoded_text.slice(0, 80) + (body.decoded_text.length > 80 ? "…" : "")));
  }

  function send(init) {
    return fetch(cfg.api + "/api/verify", init)
      .then(function (r) { return r.json().then(function (b) { render(r.status, b); }); })
      .catch(function () { clear(); out.appendChild(el("div", { "class": "verdict invalid", id: "verdict" }, "The server could not be reached")); });
  }

  document.getElementById("paste-form").addEventListener("submit", function (e) {
    e.preventDefault();
    send({ method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ qr_data: document.getElementById("frame").value.trim() }) });
  });

  function upload(blob, name) {
    var fd = new FormData();
    fd.append("image", blob, name);
    return send({ method: "POST", body: fd });
  }

  document.getElementById("upload-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var f = document.getElementById("image").files[0];
    if (f) upload(f, f.name);
  });

  var video = document.getElementById("video");
  var camMsg = document.getElementById("camera-msg");
  var start = document.getElementById("camera-start");
  var capture = document.getElementById("camera-capture");
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    start.disabled = true;
    camMsg.textContent = "This browser does not offer the camera here (it needs HTTPS or localhost).";
  }
  start.addEventListener("click", function () {
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (stream) {
      video.srcObject = stream; video.hidden = false; video.play(); capture.hidden = false;
      camMsg.textContent = "Point the camera at the code, then capture.";
    }).catch(function (err) { camMsg.textContent = "Camera unavailable: " + err.name; });
  });
  capture.addEventListener("click", function () {
    var c = document.createElement("canvas");
    c.width = video.videoWidth; c.height = video.videoHeight;
    c.getContext("2d").drawImage(video, 0, 0);
    c.toBlob(function (b) { if (b) upload(b, "camera.jpg"); }, "image/jpeg", 0.92);
  });
})();
