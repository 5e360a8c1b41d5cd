// The front page's recorded lab: the asciinema player plays the terminal session named by data-cast, on a loop.
(function () {
  "use strict";

  const element = document.getElementById("lab-demo");
  if (!element) return;
  AsciinemaPlayer.create(element.dataset.cast, element, {
    fit: "width", autoPlay: true, loop: true, idleTimeLimit: 1.5, theme: "asciinema", controls: false,
  });
})();
