// The inquiry page: the rows and counters arrive as HTML over SSE (htmx sse extension, see
// linkage/views.py); this only shows whether the live stream is connected.
(function () {
  "use strict";
  function mark(value) {
    var el = document.getElementById("live-state");
    if (el && el.dataset.live !== "off") el.dataset.live = value;
  }
  document.addEventListener("htmx:sseOpen", function () { mark("on"); });
  document.addEventListener("htmx:sseError", function () { mark("reconnecting"); });
})();
