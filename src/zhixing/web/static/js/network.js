// Online control forms on the case page: choosing the order fills in its usual amount and
// period, and switches off the fields it does not take (the server ignores them anyway).
(function () {
  "use strict";
  function sync(select, fill) {
    var form = select.form;
    var option = select.options[select.selectedIndex];
    var amount = form.elements.namedItem("amount");
    var days = form.elements.namedItem("period_days");
    amount.disabled = option.dataset.amountAllowed !== "yes";
    days.disabled = !option.dataset.days;
    if (fill) {
      amount.value = option.dataset.amount || "";
      days.value = option.dataset.days || "";
    }
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form.order-form select[name=kind]").forEach(function (select) {
      sync(select, false);
      select.addEventListener("change", function () { sync(select, true); });
    });
  });
})();
