// The instructor's replay of a learner's terminal: the asciinema player reads the recording named by data-cast.
(function () {
  "use strict";

  const element = document.getElementById("player");
  if (!element) return;  // the recording expired: the page says so instead of a player
  AsciinemaPlayer.create(element.dataset.cast, element, {fit: "width", idleTimeLimit: 2, theme: "asciinema"});
})();
