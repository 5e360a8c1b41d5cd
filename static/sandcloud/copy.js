// Copy buttons: a button with data-copy="<element id>" copies that element's text, or selects it for Ctrl+C when
// the browser keeps the clipboard from this page (plain http on a name other than localhost).
(function () {
  "use strict";

  function select(element) {
    const range = document.createRange();
    range.selectNodeContents(element);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const source = document.getElementById(button.dataset.copy);
    if (!source) return;
    const done = function () { button.textContent = button.dataset.copiedLabel || "Copied"; };
    const fallback = function () { select(source); button.textContent = "Selected: press Ctrl+C to copy"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(source.textContent).then(done, fallback);
    } else {
      fallback();
    }
  });
})();
