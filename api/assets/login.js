// Sign in: POST /v1/sessions asking for the browser cookie, then on to where the visit began.
import { api, clearErrors, clearErrorsOnEdit, showProblem } from "./api.js";

const form = document.querySelector("[data-login]");
if (form) {
  clearErrorsOnEdit(form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    const answer = await api(
      "POST",
      "/v1/sessions",
      { email: form.elements.email.value, password: form.elements.password.value },
      { "Esqase-Session": "cookie" },
    );
    if (answer.ok) {
      // The server only ever renders a path on this service here.
      window.location.assign(form.dataset.next || "/settings");
      return;
    }
    submit.disabled = false;
    const first = showProblem(form, answer);
    (first || form.elements.email).focus();
  });
}
