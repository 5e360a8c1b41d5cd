// Tells screen-reader users what htmx redrew: a check's result, a hint, a sandbox's new state. Screen readers only
// announce changes to a live region that was already on the page, and htmx replaces the elements that hold these
// (the step panel, the polled status), so their words are copied into the one region base.html draws, #sc-announcer.
// An element opts in with data-announce (its text, or the attribute's value when given) and data-announce-key (what
// it is about); it is announced when its words for that key change, never on the page's first drawing.
(function () {
  "use strict";

  const region = document.getElementById("sc-announcer");
  if (!region) return;
  const heard = new Map();

  function words(element) {
    return (element.dataset.announce || element.textContent).replace(/\s+/g, " ").trim();
  }

  function news() {
    const said = [];
    document.querySelectorAll("[data-announce-key]").forEach(function (element) {
      const key = element.dataset.announceKey;
      const text = words(element);
      if (heard.get(key) === text) return;
      heard.set(key, text);
      if (text) said.push(text);
    });
    return said;
  }

  news();
  document.body.addEventListener("htmx:afterSettle", function () {
    const said = news();
    if (!said.length) return;
    // Emptied first, so the same words said again (two failed checks in a row) are announced again.
    region.textContent = "";
    setTimeout(function () { region.textContent = said.join(" "); }, 50);
  });
})();
