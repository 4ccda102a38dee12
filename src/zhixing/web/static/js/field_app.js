// The field app: status buttons, position reports (browser geolocation or by hand), evidence
// uploads and the SOS button, all through the JSON API with the session's CSRF token.
(function () {
  "use strict";
  var csrf = document.querySelector("meta[name=csrf-token]").content;
  var resource = document.body.dataset.resource;
  var msg = document.getElementById("msg");
  var zh = document.documentElement.lang === "zh-CN";
  function t(zhText, enText) { return zh ? zhText : enText; }

  function say(text, bad) {
    msg.textContent = text;
    msg.className = "fa-msg " + (bad ? "bad" : "good");
  }

  // One request at a time, in order: a phone on a weak network should not race itself (and
  // the embedded SQLite server serialises writers anyway).
  var queue = Promise.resolve();
  function call(method, url, body, isForm) {
    var headers = { "X-CSRF-Token": csrf };
    if (!isForm) headers["Content-Type"] = "application/json";
    var done = queue.then(function () {
      return fetch(url, { method: method, headers: headers, credentials: "same-origin",
        body: isForm ? body : JSON.stringify(body) });
    }).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok) throw new Error((data.error && data.error.message) || r.status);
        return data;
      });
    });
    queue = done.catch(function () { return null; });
    return done;
  }

  function report(lon, lat, accuracy, quiet) {
    if (!resource) return Promise.resolve();
    var at = new Date().toISOString();
    return call("POST", "/api/v1/field/positions", { reports: [
      { resource: resource, at: at, lon: lon, lat: lat, accuracy_m: accuracy || null }] })
      .then(function () {
        document.getElementById("last-position").textContent =
          lon.toFixed(5) + ", " + lat.toFixed(5) + " · " +
          new Date(at).toLocaleTimeString("zh-CN", { hour12: false });
        if (!quiet) say(t("位置已上报", "Position reported"));
      }).catch(function (e) { say(t("位置上报失败：", "Position refused: ") + e.message, true); });
  }

  var last = null;
  function locate(quiet) {
    if (!navigator.geolocation) { if (!quiet) say(t("无法定位，请手动输入", "No geolocation; enter it by hand"), true); return; }
    navigator.geolocation.getCurrentPosition(function (p) {
      last = p.coords;
      report(p.coords.longitude, p.coords.latitude, p.coords.accuracy, quiet);
    }, function (err) {
      if (!quiet) say(t("无法定位，请手动输入：", "Cannot locate; enter it by hand: ") + err.message, true);
    }, { enableHighAccuracy: true, timeout: 10000, maximumAge: 5000 });
  }

  var locateButton = document.getElementById("locate");
  if (locateButton) {
    locateButton.addEventListener("click", function () { locate(false); });
    setInterval(function () { locate(true); }, 60000);  // keep the duty desk's map current
  }
  var manual = document.getElementById("manual-position");
  if (manual) manual.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var lon = parseFloat(manual.lon.value), lat = parseFloat(manual.lat.value);
    if (isNaN(lon) || isNaN(lat)) { say(t("请输入数字", "Enter numbers"), true); return; }
    report(lon, lat, null);
  });

  document.querySelectorAll(".task").forEach(function (card) {
    var id = card.dataset.id;
    card.querySelectorAll("button.move").forEach(function (b) {
      b.addEventListener("click", function () {
        b.disabled = true;
        call("POST", "/api/v1/field/dispatches/" + id + "/status", { to: b.dataset.to })
          .then(function () { window.location.reload(); })
          .catch(function (e) { b.disabled = false; say(e.message, true); });
      });
    });
    var form = card.querySelector("form.evidence");
    if (form) form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var input = form.querySelector("input[type=file]");
      if (!input.files.length) { say(t("请先选择照片或视频", "Choose a photo or video first"), true); return; }
      var data = new FormData();
      data.append("file", input.files[0]);
      say(t("正在上传…", "Uploading…"));
      call("POST", "/api/v1/field/dispatches/" + id + "/documents", data, true).then(function (r) {
        var n = form.querySelector("[data-testid=evidence-count] b");
        n.textContent = String(parseInt(n.textContent, 10) + 1);
        input.value = "";
        say(t("已上传，SHA-256：", "Uploaded, SHA-256: ") + r.sha256.slice(0, 16) + "…");
      }).catch(function (e) { say(t("上传失败：", "Upload refused: ") + e.message, true); });
    });
  });

  var sos = document.getElementById("sos");
  sos.addEventListener("click", function () {
    sos.disabled = true;
    var body = last ? { lon: last.longitude, lat: last.latitude } : {};
    call("POST", "/api/v1/field/incidents", body).then(function (r) {
      sos.classList.add("sent");
      sos.textContent = t("已求援 #", "SOS sent #") + r.id;
      say(t("求援已发出，值班领导已收到", "SOS sent to the duty desk"));
      locate(true);  // a fresh position right after, never before the SOS itself
    }).catch(function (e) { sos.disabled = false; say(e.message, true); });
  });
})();
