// The desk console's keyboard: A approve, R refuse, S rescan, J/K next/previous page (in the
// queue: next/previous dossier), Enter or O open the selected dossier, Q back to the queue,
// ? help, Esc close. Keys typed into a field are left to the field.
"use strict";
(function () {
  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }
  function items(selector) { return Array.prototype.slice.call(document.querySelectorAll(selector)); }
  function move(selector, cls, step) {
    var all = items(selector);
    if (!all.length) { return null; }
    var at = all.findIndex(function (el) { return el.classList.contains(cls); });
    var next = Math.max(0, Math.min(all.length - 1, at < 0 ? 0 : at + step));
    all.forEach(function (el) { el.classList.remove(cls); });
    all[next].classList.add(cls);
    all[next].scrollIntoView({ block: "nearest" });
    return all[next];
  }
  function activate(id) {
    items(".decision").forEach(function (el) { el.classList.remove("active"); });
    var box = document.getElementById(id);
    if (!box) { return; }
    box.classList.add("active");
    var first = box.querySelector("select, input:not([type=hidden]), textarea");
    if (first) { first.focus(); }
  }
  function submit(id) {
    var form = document.getElementById(id);
    if (form) { form.requestSubmit(); }
  }
  // The queue keeps itself current: every 10 s it asks what waits and who holds what, and
  // reloads when that changed, unless the official is typing or pressed a key just now.
  var lastKey = 0;
  var seen = null;
  function poll() {
    fetch("/desk/queue/state", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) {
        if (text === null) { return; }
        if (seen !== null && text !== seen && Date.now() - lastKey > 5000 && !typing(document.activeElement)) {
          window.location.reload();
          return;
        }
        seen = text;
      })
      .catch(function () { /* offline a moment: the next poll tries again */ });
  }
  document.addEventListener("DOMContentLoaded", function () {
    if (document.body.dataset.screen === "queue") {
      move("#queue tbody tr", "selected", 0);
      poll();
      window.setInterval(poll, Number(document.body.dataset.poll || 10000));
    }
    if (document.body.dataset.screen === "dossier") { move(".page", "current", 0); }
  });
  document.addEventListener("keydown", function (event) {
    lastKey = Date.now();
    var help = document.getElementById("help");
    if (event.key === "Escape") {
      if (help) { help.hidden = true; }
      if (document.activeElement) { document.activeElement.blur(); }
      items(".decision").forEach(function (el) { el.classList.remove("active"); });
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    var screen = document.body.dataset.screen;
    var key = event.key;
    var handled = true;
    if (key === "?") {
      if (help) { help.hidden = !help.hidden; }
    } else if (screen === "queue" && (key === "j" || key === "k")) {
      move("#queue tbody tr", "selected", key === "j" ? 1 : -1);
    } else if (screen === "queue" && (key === "Enter" || key === "o")) {
      var row = document.querySelector("#queue tbody tr.selected a.open");
      if (row) { row.click(); } else { handled = false; }
    } else if (screen === "dossier" && (key === "j" || key === "k")) {
      move(".page", "current", key === "j" ? 1 : -1);
    } else if (screen === "dossier" && (key === "a" || key === "A")) {
      submit("approve-form");
    } else if (screen === "dossier" && (key === "r" || key === "R")) {
      activate("refuse");
    } else if (screen === "dossier" && (key === "s" || key === "S")) {
      activate("rescan");
    } else if (screen === "dossier" && key === "q") {
      var back = document.getElementById("to-queue");
      if (back) { back.click(); }
    } else {
      handled = false;
    }
    if (handled) { event.preventDefault(); }
  });
})();
