/*
 * Live progress on a console plan page: polls the plan's progress.json (the element with
 * data-progress-url) every second and writes what it says into the page, until the plan reaches
 * an end (done, partial, paused, cancelled). The page is complete without it: a reload shows the
 * same figures. Loaded as a file because the Content-Security-Policy allows no inline script.
 */
(function () {
  "use strict";

  function set(id, text) {
    var el = document.getElementById(id);
    if (el && el.textContent !== text) el.textContent = text;
  }

  function show(d) {
    var st = document.getElementById("plan-status");
    if (st && d.status) {
      st.textContent = d.status;
      st.className = "badge " + (d.status === "done" ? "ok" : /partial|cancelled|expired|paused/.test(d.status) ? "bad" : "wait");
    }
    set("p-worker", d.worker === "none" ? "not running in this server" : d.worker);
    if (d.message !== undefined) set("p-message", d.message);
    var p = d.progress;
    if (!p) return;
    set("p-steps", p.done + " of " + p.total + " done, " + p.running + " running, " + p.failed + " failed, " + p.conflict + " conflicts");
    set("p-calls", String(p.calls));
    set("p-429", String(p.throttled));
    set("p-eta", p.eta_ms >= 0 ? Math.round(p.eta_ms / 1000) + " s" : "-");
    var kinds = Object.keys(p.kinds || {}).map(function (k) {
      return k + " " + p.kinds[k].done + "/" + p.kinds[k].total;
    });
    set("p-kinds", kinds.length ? kinds.join(", ") : "-");
  }

  function poll(url) {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) {
        if (d) show(d);
        if (!d || !d.final) window.setTimeout(function () { poll(url); }, 1000);
        else document.getElementById("progress").setAttribute("data-final", "true");
      })
      .catch(function () { window.setTimeout(function () { poll(url); }, 5000); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var el = document.querySelector("[data-progress-url]");
    if (el) poll(el.getAttribute("data-progress-url"));
  });
})();
