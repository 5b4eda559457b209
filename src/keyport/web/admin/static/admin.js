// Keyport dashboard: small progressive enhancements. Every page works without this file.
"use strict";

(function () {
  // Copy-to-clipboard for the key shown once.
  function setUpCopy(button) {
    var target = document.getElementById(button.getAttribute("data-copy-target"));
    var label = button.querySelector("[data-copy-label]");
    var status = document.querySelector("[data-copy-status]");
    var original = label ? label.textContent : "";
    if (!target || !navigator.clipboard) {
      return; // the button stays hidden; the key can still be selected and copied
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(textOf(target)).then(function () {
        button.classList.add("is-done");
        if (label) { label.textContent = "Copied"; }
        if (status) { status.textContent = "Copied to the clipboard."; }
        window.setTimeout(function () {
          button.classList.remove("is-done");
          if (label) { label.textContent = original; }
        }, 2500);
      }, function () {
        if (status) { status.textContent = "Copying failed: select it and copy it by hand."; }
        selectText(target);
      });
    });
  }

  // A list (recovery codes) as one item a line; a single value as it is.
  function textOf(element) {
    var items = element.querySelectorAll("li");
    if (!items.length) { return element.textContent.trim(); }
    return Array.prototype.map.call(items, function (item) {
      return item.textContent.trim();
    }).join("\n") + "\n";
  }

  // "Download as a text file" for what is shown once (recovery codes).
  function setUpDownload(link) {
    var target = document.getElementById(link.getAttribute("data-download-target"));
    if (!target || !window.Blob || !window.URL) { return; }
    link.hidden = false;
    link.addEventListener("click", function () {
      var blob = new Blob([textOf(target)], { type: "text/plain" });
      link.href = URL.createObjectURL(blob);
      window.setTimeout(function () { URL.revokeObjectURL(link.href); link.href = "#"; }, 1000);
    });
  }

  function selectText(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  // The secret must not survive in the back/forward cache: wipe it when the page is left,
  // and leave a restored copy of the page for the key list.
  function guardSecret() {
    var secrets = document.querySelectorAll("[data-secret]");
    if (!secrets.length) { return; }
    window.addEventListener("pagehide", function () {
      secrets.forEach(function (element) { element.textContent = ""; });
    });
    window.addEventListener("pageshow", function (event) {
      if (event.persisted) { window.location.replace("/admin/api-keys"); }
    });
  }

  // Typing a custom number of days picks the "Custom" expiry choice.
  function setUpCustomDays(input) {
    var choice = document.getElementById(input.getAttribute("data-selects"));
    if (!choice) { return; }
    input.addEventListener("input", function () { choice.checked = true; });
    input.addEventListener("focus", function () { choice.checked = true; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-copy-target]").forEach(setUpCopy);
    document.querySelectorAll("[data-selects]").forEach(setUpCustomDays);
    document.querySelectorAll("[data-download-target]").forEach(setUpDownload);
    guardSecret();
  });
})();
