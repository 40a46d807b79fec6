/*
 * Cadence's only script (the pages work without it). Two jobs:
 *
 * 1. Instant format feedback while a brand pastes its Klaviyo key. This mirrors the rules of
 *    src/keyfmt/keyfmt.h (tidy the ends, empty, masked, pk_ + 34 key characters, 6-character
 *    public key, another prefix) so the brand sees the verdict before pressing Verify. It is only
 *    a convenience: the server runs keyfmt_check() again on every Verify and decides. The key never
 *    leaves this input except in the form's POST body.
 * 2. "Back to onboarding" links on the help page go back in history when there is history.
 */
(function () {
  "use strict";

  var TRIM = /^[\s\u00a0\u200b\u200c\u200d\u2060\ufeff'"`\u2018\u2019\u201c\u201d]+|[\s\u00a0\u200b\u200c\u200d\u2060\ufeff'"`\u2018\u2019\u201c\u201d]+$/g;
  var SHAPE = "a Klaviyo private key is pk_ followed by 34 characters (37 in all).";

  function check(raw) {
    var s = raw.replace(TRIM, "");
    var chars = Array.from(s);
    if (chars.length === 0) return { ok: false, msg: "" };
    if (/[*\u2022\u25cf\u2026]/.test(s))
      return { ok: false, msg: "This is the masked key (with dots or stars). Klaviyo shows the full key only once: create a new private key and copy it right away." };
    if (s.indexOf("pk_") === 0) {
      var body = chars.length - 3;
      if (body < 34) return { ok: false, msg: "You pasted " + chars.length + " characters; " + SHAPE + " Part of the key was not copied." };
      if (body > 34) return { ok: false, msg: "You pasted " + chars.length + " characters; " + SHAPE + " Copy just the key." };
      if (!/^pk_[A-Za-z0-9]{34}$/.test(s)) return { ok: false, msg: "The key is the right length but has characters a key never has. Copy it again from Klaviyo." };
      return { ok: true, msg: "This looks like a Klaviyo private key. Press Verify to check it with Klaviyo." };
    }
    if (/^[A-Za-z0-9]{6}$/.test(s))
      return { ok: false, msg: "This is your Public API Key (site ID). Cadence needs a Private API Key, which starts with pk_." };
    if (/^pk_/i.test(s)) return { ok: false, msg: "A Klaviyo private key starts with a lower-case pk_." };
    if (s.indexOf("pk_") > 0) return { ok: false, msg: "There is other text before pk_. Copy only the key." };
    return { ok: false, msg: "This does not start with pk_, so it is not a Klaviyo private key." };
  }

  function wireKey(input) {
    var out = document.getElementById(input.getAttribute("data-keyfmt"));
    if (!out) return;
    var update = function () {
      var r = check(input.value);
      out.textContent = r.msg;
      out.className = "check " + (r.msg === "" ? "" : r.ok ? "good" : "bad");
    };
    input.addEventListener("input", update);
    input.addEventListener("paste", function () { window.setTimeout(update, 0); });
  }

  function wireBack(a) {
    a.addEventListener("click", function (e) {
      if (window.history.length > 1) {
        e.preventDefault();
        window.history.back();
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-keyfmt]"), wireKey);
    Array.prototype.forEach.call(document.querySelectorAll("[data-back]"), wireBack);
    var notice = document.getElementById("notice");
    if (notice) notice.focus();
  });
})();
