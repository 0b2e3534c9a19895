//! The web interface in a real headless Chromium (Debian's `chromium` and `chromium-driver`),
//! driven over WebDriver as a person would use it: by visible text and labels, never by ids.
//! Every page is checked with axe-core (from the npm registry, installed under `target/` for
//! the tests only): no serious or critical violation. Each state the help page shows is saved
//! as a screenshot, under `docs/images/api-keys/` when `ESQASE_UPDATE_SCREENSHOTS` is set.
//!
//! Chromium is required: when it is missing the test fails (CI installs it, see `.ci/run`).

use anyhow::{anyhow, bail, Context, Result};
use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client as Browser, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testkit::*;

/// The axe-core release the tests run.
const AXE_VERSION: &str = "4.14.1";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace holds the api crate").to_path_buf()
}

/// axe-core's script, installed from the npm registry into `target/axe-core` on first use.
///
/// Both tests in this file start at once, and on a fresh checkout neither finds the script: one
/// install per process (the lock), into a folder of its own that is renamed into place when
/// complete, so no test (here or in a second `cargo test`) ever reads a half-written file.
fn axe_source() -> Result<String> {
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let target = workspace().join("target");
    let prefix = target.join("axe-core");
    let script = |prefix: &Path| prefix.join("node_modules").join("axe-core").join("axe.min.js");
    if !script(&prefix).exists() {
        let staging = target.join(format!("axe-core.installing.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging)?;
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
            .arg(&staging)
            .arg(format!("axe-core@{AXE_VERSION}"))
            .status()
            .context("npm is needed to fetch axe-core for the browser tests")?;
        if !status.success() || !script(&staging).exists() {
            let _ = std::fs::remove_dir_all(&staging);
            bail!("npm could not install axe-core@{AXE_VERSION}");
        }
        // A folder left by an interrupted install of an older kind is replaced; one another
        // process finished first is as good as ours.
        if !script(&prefix).exists() {
            let _ = std::fs::remove_dir_all(&prefix);
        }
        if std::fs::rename(&staging, &prefix).is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
    }
    let path = script(&prefix);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// A chromedriver started for one test, on a free port; stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/lib/chromium")])
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

async fn start_driver() -> Result<Driver> {
    let driver = find_program(&["chromedriver"]).ok_or_else(|| {
        anyhow!("chromedriver is missing: apt-get install -y chromium chromium-driver (the browser tests need it)")
    })?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting chromedriver")?;
    let driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(20) {
            bail!("chromedriver did not listen within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(driver)
}

async fn open_browser(driver: &Driver) -> Result<Browser> {
    let chromium = find_program(&["chromium", "chromium-browser"])
        .ok_or_else(|| anyhow!("chromium is missing: apt-get install -y chromium chromium-driver"))?;
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1440,900", "--lang=en-US", "--hide-scrollbars", "--force-device-scale-factor=1"],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    Ok(ClientBuilder::new(connector).capabilities(capabilities).connect(&driver.url).await?)
}

/// An XPath string literal for any text (one with both quote kinds is built with `concat`).
fn literal(text: &str) -> String {
    if !text.contains('\'') {
        format!("'{text}'")
    } else if !text.contains('"') {
        format!("\"{text}\"")
    } else {
        let parts: Vec<String> = text.split('\'').map(|p| format!("'{p}'")).collect();
        format!("concat({})", parts.join(", \"'\", "))
    }
}

/// One session in the browser against one service, with the helpers a person's steps need.
struct Walk {
    browser: Browser,
    base: String,
    axe: String,
    shots: PathBuf,
}

impl Walk {
    async fn goto(&self, path: &str) -> Result<()> {
        self.browser.goto(&format!("{}{path}", self.base)).await?;
        Ok(())
    }

    async fn path(&self) -> Result<String> {
        let url = self.browser.current_url().await?;
        Ok(match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        })
    }

    /// Waits until `check` holds (20 s at most: CI runs every test at once on two cores).
    async fn until<F, Fut>(&self, what: &str, mut check: F) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<bool>>,
    {
        let started = Instant::now();
        loop {
            if check().await.unwrap_or(false) {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(20) {
                bail!("timed out waiting until {what} (at {})", self.path().await.unwrap_or_default());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The displayed elements an XPath finds.
    async fn visible(&self, xpath: &str) -> Result<Vec<Element>> {
        let mut shown = Vec::new();
        for element in self.browser.find_all(Locator::XPath(xpath)).await? {
            if element.is_displayed().await.unwrap_or(false) {
                shown.push(element);
            }
        }
        Ok(shown)
    }

    /// The one displayed element an XPath finds, waiting (20 s at most) for it to appear.
    async fn one(&self, what: &str, xpath: &str) -> Result<Element> {
        let started = Instant::now();
        loop {
            let mut shown = self.visible(xpath).await.unwrap_or_default();
            if shown.len() == 1 {
                return shown.pop().ok_or_else(|| anyhow!("{what} vanished"));
            }
            if started.elapsed() > Duration::from_secs(20) {
                bail!("{what}: {} displayed for {xpath} (at {})", shown.len(), self.path().await.unwrap_or_default());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A button (or a link styled as one) by its visible text, within `scope` (an XPath prefix).
    async fn button_in(&self, scope: &str, text: &str) -> Result<Element> {
        let text = literal(text);
        self.one(
            &format!("the {text} button"),
            &format!("{scope}//*[self::button or self::a][normalize-space(.)={text} or @aria-label={text}]"),
        )
        .await
    }

    async fn button(&self, text: &str) -> Result<Element> {
        self.button_in("", text).await
    }

    /// A text field by its label's text (the label's `for`, or the control inside the label).
    async fn field(&self, label: &str) -> Result<Element> {
        let label_text = literal(label);
        let label = self
            .one(
                &format!("the {label_text} label"),
                &format!("//label[normalize-space(.)={label_text} or starts-with(normalize-space(.), concat({label_text}, ' ('))]"),
            )
            .await?;
        match label.attr("for").await? {
            Some(id) => Ok(self.browser.find(Locator::Id(&id)).await?),
            None => Ok(label.find(Locator::XPath(".//input")).await?),
        }
    }

    /// A checkbox by its accessible name, as its label reads ("Contacts: Read").
    async fn checkbox(&self, name: &str) -> Result<Element> {
        let name = literal(name);
        self.one(
            &format!("the {name} box"),
            &format!("//label[normalize-space(.)={name}]//input[@type='checkbox'] | //input[@type='checkbox'][@aria-label={name}]"),
        )
        .await
    }

    /// True when some displayed element reads exactly `text`.
    async fn shows(&self, text: &str) -> Result<bool> {
        let text = literal(text);
        Ok(!self.visible(&format!("//*[normalize-space(.)={text}]")).await?.is_empty())
    }

    async fn expect_text(&self, text: &str) -> Result<()> {
        self.until(&format!("\"{text}\" shows"), || self.shows(text)).await
    }

    /// The table row whose name cell reads `name`.
    fn row(name: &str) -> String {
        format!("//tr[th[normalize-space(.)={}]]", literal(name))
    }

    async fn row_text(&self, name: &str) -> Result<String> {
        Ok(self.one(&format!("the row of {name}"), &Self::row(name)).await?.text().await?)
    }

    /// The open `<dialog>`, if any: its heading.
    async fn open_dialog(&self) -> Result<Option<String>> {
        let value = self
            .browser
            .execute("const d = document.querySelector('dialog[open]'); return d ? d.querySelector('h2').textContent : null;", vec![])
            .await?;
        Ok(value.as_str().map(str::to_owned))
    }

    async fn expect_dialog(&self, heading: &str) -> Result<()> {
        self.until(&format!("the \"{heading}\" dialog is open"), || async {
            Ok(self.open_dialog().await?.as_deref() == Some(heading))
        })
        .await
    }

    async fn expect_no_dialog(&self) -> Result<()> {
        self.until("no dialog is open", || async { Ok(self.open_dialog().await?.is_none()) }).await
    }

    /// Where keyboard focus is: inside the open dialog?
    async fn focus_in_dialog(&self) -> Result<bool> {
        let value = self
            .browser
            .execute(
                "const d = document.querySelector('dialog[open]'); return !!d && d.contains(document.activeElement);",
                vec![],
            )
            .await?;
        Ok(value.as_bool().unwrap_or(false))
    }

    async fn press(&self, key: Key) -> Result<()> {
        let focused = self.browser.active_element().await?;
        focused.send_keys(&char::from(key).to_string()).await?;
        Ok(())
    }

    /// Runs axe-core on the page as it is now: no serious or critical violation.
    async fn axe(&self, page: &str) -> Result<()> {
        self.browser.execute(&self.axe, vec![]).await?;
        let found = self
            .browser
            .execute_async(
                r#"const done = arguments[arguments.length - 1];
                   axe.run(document, { resultTypes: ["violations"] })
                     .then(r => done(r.violations
                       .filter(v => v.impact === "serious" || v.impact === "critical")
                       .map(v => ({ id: v.id, impact: v.impact, help: v.help,
                                    nodes: v.nodes.map(n => n.target.join(" ")) }))))
                     .catch(e => done([{ id: "axe-error", help: String(e) }]));"#,
                vec![],
            )
            .await?;
        match found.as_array() {
            Some(violations) if violations.is_empty() => Ok(()),
            _ => bail!("axe found serious or critical violations on {page}: {found:#}"),
        }
    }

    /// Saves the viewport as `{name}.png` under `docs/images/api-keys/` (with
    /// `ESQASE_UPDATE_SCREENSHOTS` set) or `target/browser-shots/docs/`.
    async fn screenshot(&self, name: &str) -> Result<()> {
        // Let transitions and focus rings settle.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let png = self.browser.screenshot().await?;
        std::fs::create_dir_all(&self.shots)?;
        std::fs::write(self.shots.join(format!("{name}.png")), png)?;
        Ok(())
    }

    /// Saves the viewport under `target/browser-shots/` for a person to look at (not the docs).
    async fn review_shot(&self, name: &str) -> Result<()> {
        let png = self.browser.screenshot().await?;
        let dir = workspace().join("target").join("browser-shots");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("{name}.png")), png)?;
        Ok(())
    }

    async fn script(&self, js: &str) -> Result<Value> {
        Ok(self.browser.execute(js, vec![]).await?)
    }

    async fn sign_in(&self, email: &str) -> Result<()> {
        self.field("Email").await?.send_keys(email).await?;
        self.field("Password").await?.send_keys(PASSWORD).await?;
        self.button("Sign in").await?.click().await?;
        Ok(())
    }
}

async fn start_walk(app: &TestApp, driver: &Driver) -> Result<Walk> {
    Ok(Walk {
        browser: open_browser(driver).await?,
        base: app.base_url.clone(),
        axe: axe_source()?,
        // The committed screenshots change only when asked for (each run has new keys, so new
        // pixels): `ESQASE_UPDATE_SCREENSHOTS=1 cargo test -p api --test browser`.
        shots: if std::env::var_os("ESQASE_UPDATE_SCREENSHOTS").is_some() {
            workspace().join("docs").join("images").join("api-keys")
        } else {
            workspace().join("target").join("browser-shots").join("docs")
        },
    })
}

/// Every statement of the help page about the API keys page, walked in the browser.
#[tokio::test]
async fn an_admin_manages_api_keys_in_the_browser() {
    let app = TestApp::spawn().await.expect("the service starts");
    let driver = start_driver().await.expect("chromedriver starts (install chromium and chromium-driver)");
    let walk = start_walk(&app, &driver).await.expect("the browser opens");
    let result = admin_walk(&app, &walk).await;
    let _ = walk.browser.close().await;
    app.stop().await.expect("stops");
    result.expect("the walk");
}

async fn admin_walk(app: &TestApp, walk: &Walk) -> Result<()> {
    let client = Client::new(app);
    let owner = sign_up(&client, "Hale & Moreno LLP", "olivia@halemoreno.test").await;

    // Sign in: an unsigned visit goes to /login and comes back after.
    walk.goto("/settings/developers").await?;
    walk.until("the sign-in page shows", || async { Ok(walk.path().await?.starts_with("/login?next=")) }).await?;
    walk.axe("/login").await?;
    walk.field("Password").await?.send_keys("not the password").await?;
    walk.field("Email").await?.send_keys("olivia@halemoreno.test").await?;
    walk.button("Sign in").await?.click().await?;
    walk.expect_text("The email or password is wrong.").await?;
    walk.review_shot("login-wrong-password").await?;
    walk.field("Password").await?.clear().await?;
    walk.field("Password").await?.send_keys(PASSWORD).await?;
    walk.button("Sign in").await?.click().await?;
    walk.until("the API keys page shows", || async { Ok(walk.path().await? == "/settings/developers") }).await?;
    let cookie_visible = walk.script("return document.cookie").await?;
    assert_eq!(cookie_visible, json!(""), "the session cookie is not readable by scripts");

    // The empty state.
    walk.expect_text("No API keys yet").await?;
    walk.button("Create your first API key").await?;
    walk.axe("/settings/developers (empty)").await?;

    // Settings in the sidebar, the Developers group, the API keys card.
    walk.one("the sidebar's Settings", "//nav//a[normalize-space(.)='Settings']").await?.click().await?;
    walk.until("the Settings hub shows", || async { Ok(walk.path().await? == "/settings") }).await?;
    walk.expect_text("Developers").await?;
    walk.expect_text("Create keys to sync contacts, matters, and leads via the REST API.").await?;
    walk.axe("/settings").await?;
    walk.screenshot("settings-developers-card").await?;
    walk.one("the API keys card", "//main//a[.//*[normalize-space(.)='API keys']]").await?.click().await?;
    walk.until("the API keys page shows", || async { Ok(walk.path().await? == "/settings/developers") }).await?;

    // Create API key: the button stays disabled until a name and a scope.
    walk.button("Create API key").await?.click().await?;
    walk.expect_dialog("Create API key").await?;
    assert!(walk.focus_in_dialog().await?, "focus moves into the dialog");
    let dialog = "//dialog[@open]";
    let submit = walk.button_in(dialog, "Create API key").await?;
    assert!(!submit.is_enabled().await?, "disabled with nothing filled in");
    walk.field("Name").await?.send_keys("Intake sync").await?;
    assert!(!submit.is_enabled().await?, "disabled with a name but no scope");
    for group in ["Contacts", "Matters", "Leads", "Practice areas", "Matter types"] {
        for access in ["Read", "Write"] {
            walk.checkbox(&format!("{group}: {access}")).await?;
        }
    }
    walk.checkbox("Contacts: Read").await?.click().await?;
    assert!(submit.is_enabled().await?, "enabled with a name and a scope");
    // Escape closes the dialog; opening it again starts afresh.
    walk.press(Key::Escape).await?;
    walk.expect_no_dialog().await?;
    walk.button("Create API key").await?.click().await?;
    walk.expect_dialog("Create API key").await?;
    assert!(!walk.button_in(dialog, "Create API key").await?.is_enabled().await?, "a fresh form");
    // Focus stays in the dialog as the keyboard moves through it.
    for _ in 0..16 {
        walk.press(Key::Tab).await?;
        assert!(walk.focus_in_dialog().await?, "focus is trapped in the dialog");
    }

    walk.field("Name").await?.send_keys("Intake sync").await?;
    for scope in ["Contacts: Read", "Contacts: Write", "Matters: Read"] {
        walk.checkbox(scope).await?.click().await?;
    }
    walk.field("Allowed domains").await?.send_keys("app.example.com\nnot a host!").await?;
    walk.button_in(dialog, "Create API key").await?.click().await?;
    // The server's 422 field error appears next to its field.
    walk.until("the domains error shows", || async {
        let error = walk.one("the domains error", "//dialog[@open]//p[@data-error-for='allowed_domains']").await?;
        Ok(!error.text().await?.is_empty())
    })
    .await?;
    let invalid = walk.field("Allowed domains").await?.attr("aria-invalid").await?;
    assert_eq!(invalid.as_deref(), Some("true"));
    let domains = walk.field("Allowed domains").await?;
    domains.clear().await?;
    domains.send_keys("app.example.com\n*.example.com").await?;
    let expires = walk.field("Expires").await?;
    expires.send_keys("03012099").await?;
    let typed = walk.script("return document.querySelector('dialog[open] input[type=date]').value").await?;
    assert_eq!(typed, json!("2099-03-01"), "the date typed into Expires");
    // A rate limit: requests per minute unless another window is picked.
    walk.one("the rate limit", "//dialog[@open]//input[@name='rate_limit']").await?.send_keys("100").await?;
    walk.axe("the Create API key dialog").await?;
    walk.screenshot("create-api-key-dialog").await?;
    walk.button_in(dialog, "Create API key").await?.click().await?;

    // Copy your API key, once.
    walk.expect_dialog("Copy your API key").await?;
    walk.expect_text("This is the only time the full key is shown.").await?;
    let secret = walk.one("the key", "//dialog[@open]//code").await?.text().await?;
    assert!(secret.starts_with("esq_") && secret.len() == 42, "the full key: {secret}");
    walk.button_in(dialog, "Copy").await?.click().await?;
    walk.until("the copy is confirmed", || async {
        let status = walk.one("the copy status", "//dialog[@open]//p[@role='status']").await?;
        Ok(!status.text().await?.is_empty())
    })
    .await?;
    let stored = walk
        .script("return JSON.stringify([location.href, localStorage.length, sessionStorage.length, history.length])")
        .await?;
    assert!(!stored.to_string().contains(&secret[4..]), "the key is in no URL: {stored}");
    assert!(stored.as_str().is_some_and(|s| s.contains(",0,0,")), "nothing in browser storage: {stored}");
    walk.axe("the Copy your API key view").await?;
    walk.screenshot("copy-api-key-once").await?;
    walk.button_in(dialog, "Done").await?.click().await?;
    walk.expect_no_dialog().await?;
    walk.until("the new row shows", || async { Ok(walk.visible(&Walk::row("Intake sync")).await?.len() == 1) }).await?;
    let source = walk.browser.source().await?;
    assert!(!source.contains(&secret), "the key is gone from the page once the dialog closes");
    let row = walk.row_text("Intake sync").await?;
    let preview = format!("{}…{}", &secret[..10], &secret[secret.len() - 4..]);
    for words in [
        "Active",
        preview.as_str(),
        "Contacts: Read, Write",
        "Matters: Read",
        "app.example.com",
        "100 per minute",
        "Mar 1, 2099",
    ] {
        assert!(row.contains(words), "{words} in the row: {row}");
    }
    assert!(row.contains("Olivia Owner"), "Created by: {row}");

    // More keys, as a firm has them: used, restricted, revoked, expired.
    let migration = create_key(
        &client,
        &owner,
        &json!({"name": "Migration script", "scopes": ["matters:read", "matter_types:read"], "expires_at": "2027-06-30"}),
    )
    .await;
    let used = migration["secret"].as_str().expect("a secret");
    let current = client.get("/v1/api-keys/current", used).await;
    assert_eq!(current.status, 200, "{}", current.text);
    create_key(
        &client,
        &owner,
        &json!({"name": "Website intake form", "scopes": ["leads:write"], "allowed_domains": ["www.halemoreno.test"]}),
    )
    .await;
    let contractor =
        create_key(&client, &owner, &json!({"name": "Contractor import", "scopes": ["contacts:write"]})).await;
    let contractor_id = contractor["api_key"]["id"].as_str().expect("an id");
    assert_eq!(
        client.post(&format!("/v1/api-keys/{contractor_id}/revoke"), Some(&owner.token), &json!({})).await.status,
        200
    );
    let soon = (chrono::Utc::now() + chrono::TimeDelta::seconds(2)).to_rfc3339();
    create_key(
        &client,
        &owner,
        &json!({"name": "One-time export", "scopes": ["practice_areas:read"], "expires_at": soon}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    walk.goto("/settings/developers").await?;
    walk.until("Last used is recorded", || async {
        walk.browser.refresh().await?;
        Ok(!walk.row_text("Migration script").await?.contains("—"))
    })
    .await?;
    assert!(walk.row_text("One-time export").await?.contains("Expired"));
    assert!(walk.row_text("Contractor import").await?.contains("Revoked"));
    assert!(walk.row_text("Website intake form").await?.contains("www.halemoreno.test"));
    assert!(!walk.row_text("Website intake form").await?.contains("Any"));
    assert!(walk.row_text("Migration script").await?.contains("Any"));
    assert!(walk.row_text("Migration script").await?.contains("No limit"));
    // Only Active rows show actions; the others a dash.
    for name in ["Contractor import", "One-time export"] {
        let actions = walk.one("the actions cell", &format!("{}/td[last()]", Walk::row(name))).await?;
        assert_eq!(actions.text().await?, "—", "{name}");
    }
    walk.button("Previous").await?;
    walk.button("Next").await?;
    walk.axe("/settings/developers (keys)").await?;
    walk.screenshot("api-keys-table").await?;

    // Edit allowed domains.
    walk.button_in(&Walk::row("Intake sync"), "Domains for Intake sync").await?.click().await?;
    walk.expect_dialog("Edit allowed domains").await?;
    let textarea = walk.field("Allowed domains").await?;
    assert_eq!(textarea.prop("value").await?.as_deref(), Some("app.example.com\n*.example.com"));
    textarea.send_keys("\nportal.halemoreno.test").await?;
    walk.axe("the Edit allowed domains dialog").await?;
    walk.screenshot("edit-allowed-domains").await?;
    walk.button_in(dialog, "Save").await?.click().await?;
    walk.expect_no_dialog().await?;
    walk.until("the new domain shows in the row", || async {
        Ok(walk.row_text("Intake sync").await?.contains("portal.halemoreno.test"))
    })
    .await?;

    // Edit the rate limit, from the row's "..." menu: the dialog starts from the key's limit.
    walk.button_in(&Walk::row("Intake sync"), "More actions for Intake sync").await?.click().await?;
    walk.one("the Rate limit item", "//*[@role='menu']//*[@role='menuitem'][normalize-space(.)='Rate limit']")
        .await?
        .click()
        .await?;
    walk.expect_dialog("Edit rate limit").await?;
    let limit = walk.one("the rate limit", "//dialog[@open]//input[@name='rate_limit']").await?;
    assert_eq!(limit.prop("value").await?.as_deref(), Some("100"));
    limit.clear().await?;
    limit.send_keys("0").await?;
    walk.button_in(dialog, "Save").await?.click().await?;
    walk.until("the limit's error shows", || async {
        let error = walk.one("the limit error", "//dialog[@open]//p[@data-error-for='rate_limit']").await?;
        Ok(!error.text().await?.is_empty())
    })
    .await?;
    limit.clear().await?;
    limit.send_keys("5000").await?;
    walk.one("the hour window", "//dialog[@open]//select[@name='rate_limit_window']/option[@value='3600']")
        .await?
        .click()
        .await?;
    walk.axe("the Edit rate limit dialog").await?;
    walk.review_shot("edit-rate-limit").await?;
    walk.button_in(dialog, "Save").await?.click().await?;
    walk.expect_no_dialog().await?;
    walk.until("the new limit shows in the row", || async {
        Ok(walk.row_text("Intake sync").await?.contains("5000 per hour"))
    })
    .await?;

    // Revoke, from the row's "..." menu, after the confirmation.
    let menu = walk.button_in(&Walk::row("Website intake form"), "More actions for Website intake form").await?;
    menu.click().await?;
    assert_eq!(menu.attr("aria-expanded").await?.as_deref(), Some("true"));
    walk.press(Key::Escape).await?;
    assert_eq!(menu.attr("aria-expanded").await?.as_deref(), Some("false"), "Escape closes the menu");
    menu.click().await?;
    walk.one("the Revoke item", "//*[@role='menu']//*[@role='menuitem'][normalize-space(.)='Revoke']")
        .await?
        .click()
        .await?;
    walk.expect_dialog("Revoke API key").await?;
    walk.expect_text(
        "Revoking Website intake form stops it from working immediately: the very next request that uses it is \
         rejected. This cannot be undone.",
    )
    .await?;
    walk.axe("the Revoke confirmation").await?;
    walk.screenshot("revoke-api-key").await?;
    walk.button_in(dialog, "Revoke key").await?.click().await?;
    walk.expect_no_dialog().await?;
    walk.until("the row shows Revoked", || async {
        Ok(walk.row_text("Website intake form").await?.contains("Revoked"))
    })
    .await?;

    // Roll, from the row's "..." menu: pick when the old key stops, then copy the new one once.
    create_key(&client, &owner, &json!({"name": "Billing sync", "scopes": ["matters:read"]})).await;
    walk.browser.refresh().await?;
    walk.button_in(&Walk::row("Billing sync"), "More actions for Billing sync").await?.click().await?;
    walk.one("the Roll item", "//*[@role='menu']//*[@role='menuitem'][normalize-space(.)='Roll']")
        .await?
        .click()
        .await?;
    walk.expect_dialog("Roll API key").await?;
    walk.one("the 1 hour choice", "//dialog[@open]//label[normalize-space(.)='In 1 hour']//input")
        .await?
        .click()
        .await?;
    walk.axe("the Roll dialog").await?;
    walk.review_shot("roll-api-key").await?;
    walk.button_in(dialog, "Roll key").await?.click().await?;
    walk.expect_dialog("Copy your API key").await?;
    let secret = walk.one("the new secret", "//dialog[@open]//code[@data-secret]").await?.text().await?;
    assert!(secret.starts_with("esq_"), "{secret}");
    walk.button_in(dialog, "Done").await?.click().await?;
    walk.until("both keys show, the old one rolled", || async {
        let rows = walk.visible(&Walk::row("Billing sync")).await?;
        let mut texts = Vec::new();
        for row in rows {
            texts.push(row.text().await?);
        }
        Ok(texts.len() == 2 && texts.iter().filter(|t| t.contains("Rolled: stops working")).count() == 1)
    })
    .await?;

    // A name is text, never markup.
    create_key(&client, &owner, &json!({"name": "<img src=x onerror=alert(1)>", "scopes": ["contacts:read"]})).await;
    walk.browser.refresh().await?;
    walk.one("the row named like markup", &Walk::row("<img src=x onerror=alert(1)>")).await?;
    assert_eq!(walk.script("return document.querySelectorAll('main img').length").await?, json!(0));

    // The audit log shows the change to the key's domains, and verifies the chain.
    walk.one("the sidebar's Audit log", "//nav//a[normalize-space(.)='Audit log']").await?.click().await?;
    walk.until("the audit log shows", || async { Ok(walk.path().await? == "/settings/audit-log") }).await?;
    walk.expect_text("api_key.domains_updated").await?;
    walk.expect_text("api_key.revoked").await?;
    walk.one("the verify result", "//*[@role='status'][contains(., 'Chain verified.')]").await?;
    walk.button("Export CSV").await?;
    walk.button("Export JSON Lines").await?;
    walk.axe("/settings/audit-log").await?;
    walk.review_shot("audit-log").await?;

    // Roles and permissions: the owner grants API keys to attorneys, at once.
    walk.one("the sidebar's Roles and permissions", "//nav//a[normalize-space(.)='Roles and permissions']")
        .await?
        .click()
        .await?;
    walk.until("the roles grid shows", || async { Ok(walk.path().await? == "/settings/roles") }).await?;
    walk.one("the Developers group", "//th[normalize-space(.)='Developers']").await?;
    assert!(!walk.checkbox("Owner: API keys").await?.is_enabled().await?, "the owner's row is fixed");
    let attorney = walk.checkbox("Attorney: API keys").await?;
    assert!(!attorney.is_selected().await?);
    attorney.click().await?;
    walk.until("the change is saved", || async {
        let status = walk.one("the status", "//*[@role='status'][@data-roles-status]").await?;
        Ok(status.text().await?.starts_with("Saved"))
    })
    .await?;
    let roles = client.get("/v1/roles", &owner.token).await;
    assert!(roles.text.contains(r#""role":"attorney","permissions":["contacts:read","contacts:write","matters:read","matters:write","leads:read","leads:write","practice_areas:read","practice_areas:write","matter_types:read","matter_types:write","api_keys"]"#), "{}", roles.text);
    walk.axe("/settings/roles").await?;
    walk.review_shot("roles").await?;

    // Readable at 360 px: nothing wider than the screen but the table, which scrolls in place.
    walk.browser.set_window_size(360, 780).await?;
    for page in ["/settings", "/settings/developers", "/settings/roles", "/settings/audit-log"] {
        walk.goto(page).await?;
        let overflow = walk.script("return document.documentElement.scrollWidth - window.innerWidth").await?;
        let wide = walk
            .script(
                "return [...document.querySelectorAll('body *')]
                   .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.table-wrap, dialog'))
                   .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))
                   .concat([String(window.innerWidth)])",
            )
            .await?;
        assert!(overflow.as_i64().is_some_and(|o| o <= 0), "{page} is wider than the screen by {overflow}: {wide}");
        walk.axe(&format!("{page} at 360 px")).await?;
        walk.review_shot(&format!("{}-360", page.trim_start_matches('/').replace('/', "-"))).await?;
        if page == "/settings/developers" {
            walk.script("document.querySelectorAll('[data-menu-button]')[1].scrollIntoView({block: 'center'})").await?;
            walk.review_shot("settings-developers-360-rows").await?;
        }
    }
    walk.browser.set_window_size(1440, 900).await?;

    // Sign out: back to sign-in, and the pages need it again.
    walk.goto("/settings").await?;
    walk.button("Sign out").await?.click().await?;
    walk.until("the sign-in page shows", || async { Ok(walk.path().await? == "/login") }).await?;
    walk.goto("/settings/developers").await?;
    walk.until("signing in is needed again", || async { Ok(walk.path().await?.starts_with("/login?next=")) }).await?;
    Ok(())
}

/// An invited attorney sets a password from the invitation link and signs in; their role lacks
/// `api_keys`, so neither the card nor the page appears for them.
#[tokio::test]
async fn an_invited_attorney_joins_in_the_browser_and_sees_no_api_keys() {
    let app = TestApp::spawn().await.expect("the service starts");
    let driver = start_driver().await.expect("chromedriver starts (install chromium and chromium-driver)");
    let walk = start_walk(&app, &driver).await.expect("the browser opens");
    let result = attorney_walk(&app, &walk).await;
    let _ = walk.browser.close().await;
    app.stop().await.expect("stops");
    result.expect("the walk");
}

async fn attorney_walk(app: &TestApp, walk: &Walk) -> Result<()> {
    let client = Client::new(app);
    let owner = sign_up(&client, "Hale & Moreno LLP", "olivia@halemoreno.test").await;
    let invited = client
        .post(
            "/v1/members",
            Some(&owner.token),
            &json!({"name": "Ada Attorney", "email": "ada@halemoreno.test", "role": "attorney"}),
        )
        .await;
    assert_eq!(invited.status, 201, "{}", invited.text);
    let token = invited.body["invitation_token"].as_str().expect("a token");

    walk.goto(&format!("/invitations/accept#token={token}")).await?;
    walk.expect_text("Accept your invitation").await?;
    let href = walk.script("return location.href").await?;
    assert!(!href.to_string().contains(token), "the token leaves the address bar: {href}");
    walk.axe("/invitations/accept").await?;
    walk.review_shot("accept-invitation").await?;
    walk.field("Password").await?.send_keys("short").await?;
    walk.button("Set password and sign in").await?.click().await?;
    walk.until("the password error shows", || async {
        let error = walk.one("the password error", "//p[@data-error-for='password']").await?;
        Ok(!error.text().await?.is_empty())
    })
    .await?;
    walk.field("Password").await?.clear().await?;
    walk.field("Password").await?.send_keys(PASSWORD).await?;
    walk.button("Set password and sign in").await?.click().await?;
    walk.until("the Settings hub shows", || async { Ok(walk.path().await? == "/settings") }).await?;
    walk.expect_text("Ada Attorney").await?;
    assert!(!walk.shows("Create keys to sync contacts, matters, and leads via the REST API.").await?);
    assert!(walk.visible("//nav//a[normalize-space(.)='API keys']").await?.is_empty());
    walk.goto("/settings/developers").await?;
    walk.expect_text("You don't have access to this page").await?;
    walk.axe("/settings/developers (no access)").await?;
    walk.review_shot("no-access").await?;
    walk.goto("/settings/roles").await?;
    walk.expect_text("What each role in your firm may do. Only the firm's owner can change this.").await?;
    assert!(!walk.checkbox("Attorney: API keys").await?.is_enabled().await?, "only the owner can change it");

    // The invitation link works once.
    walk.button("Sign out").await?.click().await?;
    walk.until("the sign-in page shows", || async { Ok(walk.path().await? == "/login") }).await?;
    walk.goto(&format!("/invitations/accept#token={token}")).await?;
    walk.field("Password").await?.send_keys(PASSWORD).await?;
    walk.button("Set password and sign in").await?.click().await?;
    walk.until("the used invitation is refused", || async {
        Ok(walk.visible("//*[@role='alert'][contains(., 'This invitation is not valid')]").await?.len() == 1)
    })
    .await?;
    // And the attorney signs in with Email and Password.
    walk.goto("/login").await?;
    walk.sign_in("ada@halemoreno.test").await?;
    walk.until("the Settings hub shows", || async { Ok(walk.path().await? == "/settings") }).await?;
    Ok(())
}
