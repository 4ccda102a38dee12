// The command desk and request page: the sections arrive as HTML over SSE (htmx sse extension,
// see command/views.py); this ticks the clocks every second and shows the stream's state.
(function () {
  "use strict";
  function mark(value) {
    var el = document.getElementById("live-state");
    if (el) el.dataset.live = value;
  }
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  // Statutory clocks run for days (a normal request: 7): past a day the span reads "2天 3:04:05".
  var DAY = /^zh/.test(document.documentElement.lang || "zh") ? "天 " : "d ";
  function span(ms) {
    var s = Math.floor(Math.abs(ms) / 1000), d = Math.floor(s / 86400),
        h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    var clock = (h || d ? h + ":" + pad(m) : String(m)) + ":" + pad(s % 60);
    return d ? d + DAY + clock : clock;
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-due]").forEach(function (el) {
      var due = Date.parse(el.dataset.due);
      if (isNaN(due)) return;
      var left = due - now;
      var label = left >= 0 ? el.dataset.left : el.dataset.over;
      var text = el.querySelector(".left");
      if (!text) { text = document.createElement("span"); text.className = "left"; el.appendChild(text); }
      text.textContent = label + " " + span(left);
      if (left < 0) { el.classList.remove("clock-ok", "clock-warn"); el.classList.add("clock-overdue"); }
    });
  }
  // A section is not replaced under a form being filled in (an open <details> or a focused
  // field): the newest HTML waits, and is put in when the form is closed again.
  var waiting = new Map();
  function editing(section) {
    if (section.querySelector("details[open] form")) return true;
    var f = document.activeElement;
    return !!(f && f.form && section.contains(f));
  }
  document.addEventListener("htmx:sseBeforeMessage", function (e) {
    var section = e.target;
    if (editing(section)) { waiting.set(section, e.detail.data); e.preventDefault(); }
  });
  document.addEventListener("toggle", function (e) {
    var details = e.target;
    if (details.open) return;
    waiting.forEach(function (html, section) {
      if (section.contains(details) && !editing(section)) {
        waiting.delete(section);
        htmx.swap(section, html, { swapStyle: "innerHTML" });
        tick();
      }
    });
  }, true);
  document.addEventListener("htmx:sseOpen", function () { mark("on"); });
  document.addEventListener("htmx:sseError", function () { mark("reconnecting"); });
  document.addEventListener("htmx:afterSwap", tick);
  document.addEventListener("DOMContentLoaded", function () { tick(); setInterval(tick, 1000); });
})();
