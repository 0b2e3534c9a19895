// The API keys page: the Create API key dialog (then the copy-once view), Edit allowed domains,
// and the row's "..." menu with Rate limit, Roll (a grace period, then the same copy-once view)
// and Revoke. Each sends its command to /v1/api-keys; the page then reloads, so the table is
// always the server's.
import "./app.js";
import { api, clearErrors, clearErrorsOnEdit, describe, showProblem } from "./api.js";

const createDialog = document.getElementById("create-key-dialog");
const copyDialog = document.getElementById("copy-key-dialog");
const domainsDialog = document.getElementById("domains-dialog");
const revokeDialog = document.getElementById("revoke-dialog");
const rollDialog = document.getElementById("roll-dialog");
const rateLimitDialog = document.getElementById("rate-limit-dialog");

for (const dialog of [createDialog, copyDialog, domainsDialog, revokeDialog, rollDialog, rateLimitDialog]) {
  for (const button of dialog.querySelectorAll("[data-close]")) {
    button.addEventListener("click", () => dialog.close());
  }
}

// Create API key: the button stays disabled until there is a name and at least one scope.
const createForm = createDialog.querySelector("[data-create-key]");
const createSubmit = createForm.querySelector("[data-submit]");
const scopeBoxes = () => [...createForm.querySelectorAll("input[name=scopes]")];
function updateCreateButton() {
  const named = createForm.elements.name.value.trim() !== "";
  const scoped = scopeBoxes().some((box) => box.checked);
  createSubmit.disabled = !(named && scoped);
}
createForm.addEventListener("input", updateCreateButton);
clearErrorsOnEdit(createForm);
createForm.addEventListener("change", updateCreateButton);

for (const opener of document.querySelectorAll("[data-open-create]")) {
  opener.addEventListener("click", () => {
    createForm.reset();
    clearErrors(createForm);
    updateCreateButton();
    createDialog.showModal();
    createForm.elements.name.focus();
  });
}

createForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (createSubmit.disabled) return;
  clearErrors(createForm);
  const body = {
    name: createForm.elements.name.value,
    scopes: scopeBoxes().filter((box) => box.checked).map((box) => box.value),
  };
  const expires = createForm.elements.expires_at.value;
  if (expires) body.expires_at = expires;
  const domains = createForm.elements.allowed_domains.value;
  if (domains.trim()) body.allowed_domains = [domains];
  const rateLimit = rateLimitOf(createForm);
  if (rateLimit) body.rate_limit = rateLimit;
  createSubmit.disabled = true;
  const answer = await api("POST", "/v1/api-keys", body);
  updateCreateButton();
  if (answer.status === 201 && answer.data && answer.data.secret) {
    createDialog.close();
    createForm.reset();
    showSecretOnce(answer.data.secret);
    return;
  }
  const first = showProblem(createForm, answer);
  if (first) first.focus();
});

// The copy-once view. The secret lives in this function's scope and the code box only; it is
// never put in a URL, storage or a log, and is wiped from the page when the dialog closes.
function showSecretOnce(secret) {
  const code = copyDialog.querySelector("[data-secret]");
  const status = copyDialog.querySelector("[data-copy-status]");
  const copy = copyDialog.querySelector("[data-copy]");
  let held = secret;
  code.textContent = held;
  status.textContent = "";
  const onCopy = async () => {
    if (!held) return;
    try {
      await navigator.clipboard.writeText(held);
      status.textContent = "Copied to your clipboard.";
    } catch {
      const range = document.createRange();
      range.selectNodeContents(code);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      status.textContent = "The key is selected: press Ctrl+C (or ⌘C) to copy it.";
    }
  };
  copy.addEventListener("click", onCopy);
  copyDialog.addEventListener(
    "close",
    () => {
      held = null;
      code.textContent = "";
      status.textContent = "";
      copy.removeEventListener("click", onCopy);
      window.getSelection().removeAllRanges();
      // The new row shows Active with its masked preview.
      window.location.reload();
    },
    { once: true },
  );
  copyDialog.showModal();
  copy.focus();
}

// Edit allowed domains.
const domainsForm = domainsDialog.querySelector("[data-edit-domains-form]");
let domainsKeyId = null;
clearErrorsOnEdit(domainsForm);
for (const button of document.querySelectorAll("[data-edit-domains]")) {
  button.addEventListener("click", () => {
    domainsKeyId = button.dataset.keyId;
    clearErrors(domainsForm);
    domainsDialog.querySelector("[data-key-name]").textContent = button.dataset.keyName;
    domainsForm.elements.allowed_domains.value = button.dataset.domains || "";
    domainsDialog.showModal();
    domainsForm.elements.allowed_domains.focus();
  });
}
domainsForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(domainsForm);
  const text = domainsForm.elements.allowed_domains.value;
  const save = domainsForm.querySelector("button[type=submit]");
  save.disabled = true;
  const answer = await api("PUT", `/v1/api-keys/${encodeURIComponent(domainsKeyId)}/allowed-domains`, {
    allowed_domains: text.trim() ? [text] : [],
  });
  save.disabled = false;
  if (answer.ok) {
    domainsDialog.close();
    window.location.reload();
    return;
  }
  const first = showProblem(domainsForm, answer);
  (first || domainsForm.elements.allowed_domains).focus();
});

// The rate-limit fields of a form: { limit, window_seconds }, or null when the number is blank
// (no limit). A number that is not a whole one is sent as typed, for the service to explain.
function rateLimitOf(form) {
  const typed = form.elements.rate_limit.value.trim();
  if (!typed) return null;
  const limit = Number(typed);
  return { limit: Number.isFinite(limit) ? limit : typed, window_seconds: Number(form.elements.rate_limit_window.value) };
}

// The row's "..." menu: opens below its button, closes on Escape, on a click elsewhere, or
// when an item is chosen.
let openMenu = null;
function closeMenu(returnFocus) {
  if (!openMenu) return;
  const { button, menu } = openMenu;
  menu.hidden = true;
  button.setAttribute("aria-expanded", "false");
  openMenu = null;
  if (returnFocus) button.focus();
}
for (const button of document.querySelectorAll("[data-menu-button]")) {
  const menu = document.getElementById(button.getAttribute("aria-controls"));
  button.addEventListener("click", (event) => {
    event.stopPropagation();
    const wasOpen = openMenu && openMenu.menu === menu;
    closeMenu(false);
    if (wasOpen) return;
    menu.hidden = false;
    button.setAttribute("aria-expanded", "true");
    openMenu = { button, menu };
    menu.querySelector("[role=menuitem]").focus();
  });
  menu.addEventListener("keydown", (event) => {
    const items = [...menu.querySelectorAll("[role=menuitem]")];
    const at = items.indexOf(document.activeElement);
    if (event.key === "Escape") {
      event.preventDefault();
      closeMenu(true);
    } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      items[(at + step + items.length) % items.length].focus();
    } else if (event.key === "Tab") {
      closeMenu(false);
    }
  });
}
document.addEventListener("click", (event) => {
  if (openMenu && !openMenu.menu.contains(event.target)) closeMenu(false);
});

// A menu item's dialog for one key (Revoke, Roll): named for the key, its errors cleared.
// Returns the key's id.
function openForKey(item, dialog, form) {
  closeMenu(false);
  clearErrors(form);
  dialog.querySelector("[data-key-name]").textContent = item.dataset.keyName;
  dialog.showModal();
  return item.dataset.keyId;
}

// Revoke, after a confirmation.
const revokeForm = revokeDialog.querySelector("[data-revoke-form]");
let revokeKeyId = null;
for (const item of document.querySelectorAll("[data-revoke]")) {
  item.addEventListener("click", () => {
    revokeKeyId = openForKey(item, revokeDialog, revokeForm);
    revokeForm.querySelector("[data-close]").focus();
  });
}
revokeForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const confirm = revokeForm.querySelector("button[type=submit]");
  confirm.disabled = true;
  const answer = await api("POST", `/v1/api-keys/${encodeURIComponent(revokeKeyId)}/revoke`);
  confirm.disabled = false;
  if (answer.ok) {
    revokeDialog.close();
    window.location.reload();
    return;
  }
  const formError = revokeForm.querySelector("[data-form-error]");
  formError.textContent = describe(answer);
  formError.hidden = false;
});

// Rate limit: set, change or remove (a blank number) the key's limit.
const rateLimitForm = rateLimitDialog.querySelector("[data-rate-limit-form]");
let rateLimitKeyId = null;
clearErrorsOnEdit(rateLimitForm);
for (const item of document.querySelectorAll("[data-rate-limit]")) {
  item.addEventListener("click", () => {
    rateLimitForm.reset();
    const windowSelect = rateLimitForm.elements.rate_limit_window;
    const seconds = item.dataset.window || "60";
    // A window set through the API that the list does not offer is shown as it is.
    if (![...windowSelect.options].some((option) => option.value === seconds)) {
      windowSelect.add(new Option(`${seconds} seconds`, seconds));
    }
    rateLimitForm.elements.rate_limit.value = item.dataset.limit || "";
    windowSelect.value = seconds;
    rateLimitKeyId = openForKey(item, rateLimitDialog, rateLimitForm);
    rateLimitForm.elements.rate_limit.focus();
  });
}
rateLimitForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(rateLimitForm);
  const save = rateLimitForm.querySelector("button[type=submit]");
  save.disabled = true;
  const answer = await api("PUT", `/v1/api-keys/${encodeURIComponent(rateLimitKeyId)}/rate-limit`, {
    rate_limit: rateLimitOf(rateLimitForm),
  });
  save.disabled = false;
  if (answer.ok) {
    rateLimitDialog.close();
    window.location.reload();
    return;
  }
  const first = showProblem(rateLimitForm, answer);
  (first || rateLimitForm.elements.rate_limit).focus();
});

// Roll: pick when the old key stops, then the new key's secret in the copy-once view.
const rollForm = rollDialog.querySelector("[data-roll-form]");
let rollKeyId = null;
for (const item of document.querySelectorAll("[data-roll]")) {
  item.addEventListener("click", () => {
    rollForm.reset();
    rollKeyId = openForKey(item, rollDialog, rollForm);
    rollForm.querySelector("input[name=grace_period_seconds]:checked").focus();
  });
}
rollForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(rollForm);
  const confirm = rollForm.querySelector("button[type=submit]");
  const grace = Number(rollForm.elements.grace_period_seconds.value);
  confirm.disabled = true;
  const answer = await api("POST", `/v1/api-keys/${encodeURIComponent(rollKeyId)}/roll`, {
    grace_period_seconds: grace,
  });
  confirm.disabled = false;
  if (answer.status === 201 && answer.data && answer.data.secret) {
    rollDialog.close();
    showSecretOnce(answer.data.secret);
    return;
  }
  const first = showProblem(rollForm, answer);
  if (first) first.focus();
});

