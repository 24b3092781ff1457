// The registry's live updates: one EventSource on /events, rows replaced in place.
// The server renders every row (the same template as the page) and applies the filters.
(function () {
  "use strict";
  var script = document.currentScript;
  var body = document.querySelector("#registry tbody");
  var table = document.getElementById("registry");
  var empty = document.getElementById("empty");
  var noMatch = document.getElementById("no-match");
  var live = document.getElementById("live");
  var problem = document.getElementById("problem");
  var seen = {};  // keys of every object streamed, matching or not, to know whether any exist
  var total = parseInt(script.dataset.total || "0", 10);
  var filtered = script.dataset.filtered === "true";

  function fromHtml(html) {
    var holder = document.createElement("tbody");
    holder.innerHTML = html;
    return holder.firstElementChild;
  }

  function upsert(key, html) {
    seen[key] = true;
    var fresh = fromHtml(html);
    var old = document.getElementById(key);
    if (old) { old.replaceWith(fresh); } else { body.appendChild(fresh); }
  }

  function remove(key) {
    var old = document.getElementById(key);
    if (old) { old.remove(); }
  }

  function refresh() {
    var count = body.children.length;
    // Unfiltered, the table holds every object; filtered, an object may exist unshown.
    var any = count > 0 || (filtered && (total > 0 || Object.keys(seen).length > 0));
    table.hidden = !any;
    empty.hidden = any;
    noMatch.hidden = !any || count > 0;
  }

  var source = new EventSource(script.dataset.events);
  source.addEventListener("open", function () {
    live.textContent = "live"; live.classList.add("on");
  });
  source.addEventListener("error", function () {
    live.textContent = "reconnecting…"; live.classList.remove("on");
  });
  source.addEventListener("sync", function (e) {
    var data = JSON.parse(e.data);
    var keep = {};
    data.rows.forEach(function (r) { keep[r.key] = true; upsert(r.key, r.html); });
    Array.prototype.slice.call(body.children).forEach(function (tr) {
      var inScope = tr.dataset.kind === data.kind &&
        (data.namespace === null || tr.dataset.namespace === data.namespace);
      if (inScope && !keep[tr.id]) { tr.remove(); }
    });
    refresh();
  });
  source.addEventListener("upsert", function (e) {
    var data = JSON.parse(e.data); upsert(data.key, data.html); refresh();
  });
  source.addEventListener("remove", function (e) {
    var data = JSON.parse(e.data); seen[data.key] = true; remove(data.key); refresh();
  });
  source.addEventListener("problem", function (e) {
    var data = JSON.parse(e.data);
    problem.textContent = data.message; problem.hidden = !data.message;
  });
})();
