// Portside's only script: progressive enhancement. Every page works without it.
"use strict";

// Copy buttons: <button data-copy-target="ID" hidden>. Shown only when scripts run; without
// scripts the command stays selectable text (user-select: all).
function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    return navigator.clipboard.writeText(text);
  }
  // Plain HTTP (not a secure context): a temporary selection and the older copy command.
  return new Promise(function (resolve, reject) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var copied = false;
    try { copied = document.execCommand("copy"); } catch (error) { copied = false; }
    document.body.removeChild(area);
    if (copied) { resolve(); } else { reject(new Error("copy refused")); }
  });
}

function setUpCopyButtons() {
  document.querySelectorAll("button[data-copy-target]").forEach(function (button) {
    var target = document.getElementById(button.getAttribute("data-copy-target"));
    if (!target) { return; }
    var status = document.getElementById(button.getAttribute("aria-describedby") || "");
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = target.textContent.trim();
      copyText(text).then(function () {
        button.setAttribute("data-copied", text);
        if (status) { status.textContent = "Copied to the clipboard."; }
      }, function () {
        var range = document.createRange();
        range.selectNodeContents(target);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        if (status) { status.textContent = "Press Ctrl+C (or ⌘C) to copy the selected command."; }
      });
    });
  });
}

document.addEventListener("DOMContentLoaded", setUpCopyButtons);
