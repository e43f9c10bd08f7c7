// tlsgate console: the live refusal list. The page works without this script; with
// it, new refusals appear at the top of the Clients page without a reload. Rows are
// built with textContent only: nothing from the server is parsed as HTML.
"use strict";

(function () {
  const body = document.getElementById("refusals");
  if (!body) return;
  const live = document.getElementById("live");
  // cell is a table cell; with tag, its text is wrapped in that element with class cls.
  const cell = (label, text, tag, cls) => {
    const td = document.createElement("td");
    td.dataset.label = label;
    if (tag) {
      const el = document.createElement(tag);
      if (cls) el.className = cls;
      el.textContent = text;
      td.appendChild(el);
    } else {
      td.textContent = text;
    }
    return td;
  };
  const row = (r) => {
    const tr = document.createElement("tr");
    tr.className = "new";
    tr.append(
      cell("When", "just now"),
      cell("Listener", r.listener),
      cell("From", r.client, "code"),
      cell("Reason", r.reason, "span", "tag bad"),
      r.subject ? cell("Certificate", r.subject + " (serial " + r.serial + ")") : cell("Certificate", "none", "span", "muted"),
      cell("Fix", r.fix),
    );
    tr.children[4].className = "wrap";
    if (r.rule) {
      const note = document.createElement("span");
      note.className = "muted";
      note.textContent = "request to " + r.rule;
      tr.children[3].append(document.createElement("br"), note);
    }
    return tr;
  };
  async function poll() {
    try {
      const res = await fetch("/ui/refusals.json?after=" + encodeURIComponent(body.dataset.after || "0"),
        { credentials: "same-origin", cache: "no-store" });
      if (!res.ok) return;
      const list = await res.json();
      if (live) live.hidden = false;
      if (list.length === 0) return;
      const empty = document.getElementById("no-refusals");
      if (empty) empty.remove();
      body.dataset.after = String(list[0].seq);
      for (let i = list.length - 1; i >= 0; i--) body.prepend(row(list[i]));
      while (body.children.length > 100) body.lastElementChild.remove();
    } catch (e) {
      if (live) live.hidden = true;
    }
  }
  poll();
  setInterval(poll, 2000);
})();
