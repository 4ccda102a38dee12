// The dispatch form (field/templates/field/dispatch_new.html): the nearest teams arrive as an
// htmx fragment; a refusal (422, e.g. a position far from Guangxi) is shown in its place too.
(function () {
  "use strict";
  document.addEventListener("htmx:beforeSwap", function (e) {
    var target = e.detail.target;
    if (e.detail.xhr.status === 422 && target && target.hasAttribute("data-swap-errors")) {
      e.detail.shouldSwap = true;
      e.detail.isError = false;
    }
  });
})();
