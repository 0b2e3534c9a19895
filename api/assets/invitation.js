// Accepting an invitation: the token arrives in the link's fragment (#token=…), which no
// server ever sees. It is read once, dropped from the address bar and history, and posted to
// POST /v1/invitations/accept with the chosen password; the answer signs the browser in.
import { api, clearErrors, clearErrorsOnEdit, showProblem } from "./api.js";

const form = document.querySelector("[data-accept-invitation]");
const token = new URLSearchParams(window.location.hash.slice(1)).get("token");
if (window.location.hash) {
  history.replaceState(null, "", window.location.pathname);
}

if (form) {
  clearErrorsOnEdit(form);
  const formError = form.querySelector("[data-form-error]");
  if (!token) {
    formError.textContent = "This page needs the link from your invitation email. Open that link again.";
    formError.hidden = false;
    form.querySelector("button[type=submit]").disabled = true;
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!token) return;
    clearErrors(form);
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    const answer = await api(
      "POST",
      "/v1/invitations/accept",
      { token, password: form.elements.password.value },
      { "Esqase-Session": "cookie" },
    );
    if (answer.ok) {
      window.location.assign("/settings");
      return;
    }
    submit.disabled = false;
    if (answer.status === 401) {
      formError.textContent = "This invitation is not valid: it may have expired or already been used. Ask your firm for a new one.";
      formError.hidden = false;
      return;
    }
    const first = showProblem(form, answer);
    (first || form.elements.password).focus();
  });
}
