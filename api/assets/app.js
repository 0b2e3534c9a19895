// What every signed-in page does: Sign out (DELETE /v1/sessions/current, which also clears the
// cookie), then back to the sign-in page.
import { api } from "./api.js";

for (const button of document.querySelectorAll("[data-sign-out]")) {
  button.addEventListener("click", async () => {
    button.disabled = true;
    await api("DELETE", "/v1/sessions/current");
    window.location.assign("/login");
  });
}
