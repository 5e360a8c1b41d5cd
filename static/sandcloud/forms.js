// Form manners shared by every page: ask before destructive submits, show progress while the server works, and keep
// a keyboard user's place when htmx redraws the part of the page they were in.
(function () {
  "use strict";

  function busy(button) {
    return button.disabled || button.getAttribute("aria-disabled") === "true";
  }

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    const button = form.querySelector("[type=submit]");
    if (!button || busy(button)) return;
    // Marked after this tick so the button's own name/value still goes with the form. Marked, not disabled: a
    // disabled button drops the keyboard focus, and with it the learner's place on the page.
    setTimeout(function () {
      button.setAttribute("aria-disabled", "true");
      const label = button.dataset.busyLabel || "Working…";
      button.innerHTML = '<span class="spinner-border spinner-border-sm me-2" aria-hidden="true"></span>';
      button.append(label);
    }, 0);
  });

  // A busy button (aria-disabled) stays focusable but does nothing: its clicks, and the Enter of a field in its form,
  // stop here before any form or htmx sees them.
  document.addEventListener("click", function (event) {
    const button = event.target.closest && event.target.closest("[type=submit][aria-disabled=true]");
    if (button) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // htmx puts the focus back on an element of the same id after a swap; when the focused element is gone (the Check
  // button of a step just passed), the focus goes to the new content's [data-focus-after-swap], or the redrawn
  // element itself, instead of falling back to the top of the page.
  const focusWasIn = new Set();  // ids of the elements being redrawn that held the focus
  document.addEventListener("htmx:beforeSwap", function (event) {
    const target = event.detail.target;
    if (target && target.id && target.contains(document.activeElement)) focusWasIn.add(target.id);
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    const id = event.detail.target && event.detail.target.id;
    if (!id || !focusWasIn.delete(id)) return;
    const redrawn = document.getElementById(id);
    if (!redrawn || (document.activeElement && document.activeElement !== document.body)) return;
    const next = redrawn.querySelector("[data-focus-after-swap]");
    if (next) {
      next.focus();
    } else {
      if (!redrawn.hasAttribute("tabindex")) redrawn.setAttribute("tabindex", "-1");
      redrawn.focus();
    }
  });

  // Back/forward cache restores the page as it was when left: give the buttons back.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) window.location.reload();
  });
})();
