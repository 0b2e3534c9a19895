// Roles and permissions: the owner ticks a box and the role's whole row is sent to
// PUT /v1/roles/{role}/permissions; it takes effect at once. On failure the box goes back.
import "./app.js";
import { api, describe } from "./api.js";

const grid = document.querySelector("[data-roles-grid]");
const status = document.querySelector("[data-roles-status]");
if (grid) {
  grid.addEventListener("change", async (event) => {
    const box = event.target;
    if (!(box instanceof HTMLInputElement) || !box.dataset.role) return;
    const role = box.dataset.role;
    const row = [...grid.querySelectorAll(`input[data-role="${CSS.escape(role)}"]`)];
    const permissions = row.filter((b) => b.checked).map((b) => b.value);
    for (const b of row) b.disabled = true;
    status.textContent = "Saving…";
    const answer = await api("PUT", `/v1/roles/${encodeURIComponent(role)}/permissions`, { permissions });
    for (const b of row) b.disabled = false;
    if (answer.ok) {
      status.textContent = `Saved: ${box.getAttribute("aria-label")} is now ${box.checked ? "on" : "off"}.`;
    } else {
      box.checked = !box.checked;
      status.textContent = describe(answer);
    }
    box.focus();
  });
}
