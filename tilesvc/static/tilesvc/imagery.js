// Follows the conversions still running on the orthophoto list: polls each one's
// status (JSON) every second and shows its state and progress; once none is left
// running, reloads the page, which then shows the results (tiles or the reason).
(function () {
  "use strict";
  const rows = Array.from(document.querySelectorAll("tr[data-running='yes']"));
  if (!rows.length) {
    return;
  }
  async function follow(row) {
    const response = await fetch(row.dataset.statusUrl, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (!response.ok) {
      return true; // try again next time
    }
    const status = await response.json();
    row.querySelector(".state").textContent = status.state_label;
    row.querySelector("progress").value = status.progress;
    row.querySelector(".stage").textContent =
      status.progress + "% " + status.stage_label;
    row.dataset.state = status.state;
    return status.state === "queued" || status.state === "converting";
  }
  async function poll() {
    let running = 0;
    for (const row of rows) {
      if (row.dataset.running === "yes") {
        let still = true;
        try {
          still = await follow(row);
        } catch (error) {
          still = true; // the server restarting, say: keep asking
        }
        row.dataset.running = still ? "yes" : "no";
        running += still ? 1 : 0;
      }
    }
    if (running) {
      window.setTimeout(poll, 1000);
    } else {
      window.location.reload();
    }
  }
  window.setTimeout(poll, 1000);
})();
