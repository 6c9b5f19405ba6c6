// Moves the import's progress bar: asks the JSON endpoint named by data-import-state
// twice a second; while writing, the bar shows the rows written of those to write. When
// the import is over, the page reloads and the server renders the result.
(function () {
  "use strict";
  var box = document.querySelector("[data-import-state]");
  var bar = document.getElementById("import-progress");
  if (!box || !bar) { return; }
  var url = box.getAttribute("data-import-state");
  function ask() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (body && body.state !== "running") {
          window.location.reload();
          return;
        }
        if (body && body.phase === "writing") {
          bar.max = Math.max(body.to_write, 1);
          bar.value = body.imported;
          bar.textContent = String(body.imported);
        }
        window.setTimeout(ask, 500);
      })
      .catch(function () { window.setTimeout(ask, 2000); });
  }
  window.setTimeout(ask, 250);
}());
