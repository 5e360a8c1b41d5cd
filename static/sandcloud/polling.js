// Timed htmx polls marked data-poll-when-visible skip their request while the tab is hidden. htmx's own trigger
// filters ("every 5s [document.visibilityState === 'visible']") are JavaScript it runs with new Function, which the
// Content-Security-Policy forbids.
(function () {
  "use strict";

  document.addEventListener("htmx:configRequest", function (event) {
    const timed = !event.detail.triggeringEvent;  // polls and "load" carry no event; clicks and custom events do
    if (timed && document.visibilityState !== "visible" && event.detail.elt.closest("[data-poll-when-visible]")) {
      event.preventDefault();
    }
  });
})();
