// Calls to the service's own /v1 routes, with the browser session cookie. Every command a page
// offers goes through here: the same routes and rules as any other client.

/**
 * Sends `method path` with an optional JSON body; resolves to { status, ok, data } where data
 * is the parsed JSON answer (a problem+json body on failure), or null.
 */
export async function api(method, path, body, headers = {}) {
  const init = {
    method,
    credentials: "same-origin",
    cache: "no-store",
    headers: { Accept: "application/json", ...headers },
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    return { status: 0, ok: false, data: { detail: "The service could not be reached. Check your connection and try again." } };
  }
  let data = null;
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  return { status: response.status, ok: response.ok, data };
}

/**
 * Clears a field's error as soon as the person edits it, so an old message never sits next to
 * a corrected value.
 */
export function clearErrorsOnEdit(root) {
  root.addEventListener("input", (event) => {
    const control = event.target;
    if (!(control instanceof Element) || !control.name) return;
    const line = root.querySelector(`[data-error-for="${CSS.escape(control.name)}"]`);
    if (line) line.textContent = "";
    for (const named of root.querySelectorAll(`[name="${CSS.escape(control.name)}"]`)) named.removeAttribute("aria-invalid");
  });
}

/** Clears every field error and the form-level error inside `root`. */
export function clearErrors(root) {
  for (const line of root.querySelectorAll("[data-error-for]")) line.textContent = "";
  for (const field of root.querySelectorAll("[aria-invalid]")) field.removeAttribute("aria-invalid");
  const formError = root.querySelector("[data-form-error]");
  if (formError) {
    formError.textContent = "";
    formError.hidden = true;
  }
}

/**
 * Shows a failed answer: each 422 field error next to its field (and marks the field invalid),
 * anything else as the form's error. Returns the first control to move focus to.
 */
export function showProblem(root, answer) {
  clearErrors(root);
  const problem = answer.data || {};
  let first = null;
  const unplaced = [];
  if (answer.status === 422 && Array.isArray(problem.errors)) {
    for (const error of problem.errors) {
      const field = String(error.field || "").split(/[.[]/)[0];
      const line = root.querySelector(`[data-error-for="${CSS.escape(field)}"]`);
      if (!line) {
        unplaced.push(error.message);
        continue;
      }
      line.textContent = line.textContent ? `${line.textContent} ${capitalize(error.message)}.` : `${capitalize(error.message)}.`;
      const control = root.querySelector(`[name="${CSS.escape(field)}"]`);
      if (control) {
        control.setAttribute("aria-invalid", "true");
        first = first || control;
      }
    }
  }
  if (unplaced.length > 0 || answer.status !== 422) {
    const formError = root.querySelector("[data-form-error]");
    if (formError) {
      formError.textContent = unplaced.length > 0 ? unplaced.map(capitalize).join(". ") : describe(answer);
      formError.hidden = false;
    }
  }
  return first;
}

/** A sentence for a failed answer. */
export function describe(answer) {
  const code = answer.data && answer.data.code;
  if (code === "invalid_session" || code === "invalid_credentials") {
    return "Your session has ended. Sign in again to continue.";
  }
  const detail = answer.data && answer.data.detail;
  return detail ? capitalize(detail) + (detail.endsWith(".") ? "" : ".") : `Something went wrong (HTTP ${answer.status}). Try again.`;
}

function capitalize(text) {
  const s = String(text);
  return s.charAt(0).toUpperCase() + s.slice(1);
}
