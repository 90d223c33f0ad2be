// The console's only script: reload the page's live regions ([data-live] with an id) every data-refresh seconds,
// in place, so scroll position and half-filled forms elsewhere on the page survive. Stops when the fetched page
// no longer asks for refreshes (e.g. the run finished); a signed-out session reloads the page (to sign-in).
(function () {
  "use strict";
  function schedule(seconds) {
    if (seconds > 0) { window.setTimeout(refresh, seconds * 1000); }
  }
  function refresh() {
    if (document.hidden) { schedule(Number(document.body.dataset.refresh)); return; }
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (response.redirected || !response.ok) { window.location.reload(); return null; }
        return response.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live][id]").forEach(function (region) {
          var replacement = fresh.getElementById(region.id);
          if (replacement) { region.replaceWith(document.importNode(replacement, true)); }
        });
        var next = fresh.body.dataset.refresh;
        if (next) { document.body.dataset.refresh = next; } else { delete document.body.dataset.refresh; }
        schedule(Number(next || 0));
      })
      .catch(function () { schedule(10); });
  }
  schedule(Number(document.body.dataset.refresh || 0));
})();
