// Store tablet: the assisted session's idle countdown. The server ends the session after 3 minutes without a
// request whatever happens here; this only warns the customer for the last 30 seconds and lets them continue.
(function () {
  "use strict";
  var box = document.getElementById("tablet-countdown");
  if (!box) { return; }
  // A shared device: the browser must not remember what this customer types (names, addresses) for the next one.
  Array.prototype.forEach.call(document.querySelectorAll("input, textarea"), function (field) {
    field.setAttribute("autocomplete", "off");
  });
  var idle = Number(box.getAttribute("data-idle-seconds")) || 180;
  var warn = Number(box.getAttribute("data-warn-seconds")) || 30;
  var seconds = box.querySelector("[data-countdown-seconds]");
  var text = document.getElementById("tablet-countdown-text");
  var announce = box.querySelector("[data-countdown-announce]");
  var finish = document.getElementById("tablet-finish");
  var cont = document.getElementById("tablet-continue");
  var deadline = 0;
  var shown = -1;

  function restart() {
    deadline = Date.now() + idle * 1000;
    box.hidden = true;
    shown = -1;
    announce.textContent = "";
  }

  function tick() {
    var left = Math.ceil((deadline - Date.now()) / 1000);
    if (left <= 0) {
      if (finish) { finish.submit(); } else { window.location.assign("/staff/tablet?ended=1"); }
      return;
    }
    if (left <= warn) {
      if (box.hidden) {
        box.hidden = false;
        var button = cont && cont.querySelector("button");
        if (button) { button.focus(); }
      }
      if (left !== shown) {
        seconds.textContent = String(left);
        // Announced every 10 seconds, not every second: a screen reader must still be able to speak.
        if (shown === -1 || left % 10 === 0) { announce.textContent = text.textContent; }
        shown = left;
      }
    }
    window.setTimeout(tick, 250);
  }

  if (cont) {
    cont.addEventListener("submit", function (event) {
      event.preventDefault();
      var body = new URLSearchParams(new FormData(cont));
      window.fetch(cont.action, { method: "POST", body: body, headers: { "HX-Request": "true" }, credentials: "same-origin" })
        .then(function (response) {
          if (response.status === 204) { restart(); } else { window.location.assign("/staff/tablet?ended=1"); }
        });
    });
  }
  // Any htmx exchange with the server moves its idle clock on, so ours too.
  document.body.addEventListener("htmx:afterRequest", restart);
  // A page restored from the back-forward cache may belong to a finished session: ask the server again.
  window.addEventListener("pageshow", function (event) { if (event.persisted) { window.location.reload(); } });
  restart();
  tick();
})();
