// The live dispute list: server-sent events replace a dispute's row with its newer version.
// No framework and no build step; the server renders each row (dispute_row.html).
"use strict";
(function () {
  const table = document.getElementById("disputes");
  if (!table || !window.EventSource) return;
  const status = document.getElementById("live-status");
  const body = table.tBodies[0];
  const source = new EventSource(table.dataset.events);
  const say = (state, text) => { status.dataset.state = state; status.textContent = text; };
  source.onopen = () => say("live", "已连接");
  source.onerror = () => say("retrying", "连接中断，正在重连");
  source.addEventListener("failure", (e) => { say("failed", JSON.parse(e.data)); source.close(); });
  source.addEventListener("dispute", (e) => {
    const holder = document.createElement("tbody");
    holder.innerHTML = e.data.trim();
    const row = holder.firstElementChild;
    if (!row) return;
    const old = document.getElementById(row.id);
    if (old) {
      if (Number(old.dataset.version) >= Number(row.dataset.version)) return;
      old.replaceWith(row);
    } else {
      body.insertBefore(row, body.firstChild);
    }
    row.classList.add("flash-row");
  });
})();
