// Form manners shared by every page: ask before destructive submits, and show progress while the server works.
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    const button = form.querySelector("[type=submit]");
    if (!button || button.disabled) return;
    // Disabled after this tick so the button's own name/value still goes with the form.
    setTimeout(function () {
      button.disabled = true;
      const label = button.dataset.busyLabel || "Working…";
      button.innerHTML = '<span class="spinner-border spinner-border-sm me-2" aria-hidden="true"></span>';
      button.append(label);
    }, 0);
  });

  // Back/forward cache restores the page as it was when left: give the buttons back.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) window.location.reload();
  });
})();
