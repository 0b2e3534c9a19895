//! The web pages as the browser receives them: signed in with the `esqase_session` cookie, the
//! HTML read as text. (tests/browser.rs in the api crate walks them in a real browser.)

use super::world::{quoted, Answer, Esqase, PASSWORD};
use anyhow::{anyhow, ensure, Context as _};
use cucumber::{then, when};
use reqwest::Method;
use serde_json::{json, Value};

/// A client that does not follow redirects, so a 303 is seen as it is.
fn browser() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?)
}

/// Signs `who` in the way the sign-in page does; returns the cookie pair to send.
async fn browser_session(w: &Esqase, who: &str) -> anyhow::Result<String> {
    let email = w.person(who)?.email.clone();
    let response = browser()?
        .post(format!("{}/v1/sessions", w.base_url))
        .header("Esqase-Session", "cookie")
        .header("Sec-Fetch-Site", "same-origin")
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await?;
    ensure!(response.status() == 201, "signing {who} in answered {}", response.status());
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| anyhow!("signing {who} in set no cookie"))?;
    ensure!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "the cookie: {cookie}");
    Ok(cookie.split(';').next().unwrap_or_default().to_owned())
}

/// Sends a request as a browser would, records the answer (HTML pages have no JSON).
async fn send(w: &mut Esqase, request: reqwest::RequestBuilder) -> anyhow::Result<Answer> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await?;
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    let answer = Answer { status, headers, text, body };
    w.answers.push(answer.clone());
    Ok(answer)
}

/// The text a person reads in some HTML: tags dropped, entities decoded, spaces folded.
fn readable(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let decoded = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// How maud writes a value into HTML.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn page(w: &Esqase) -> anyhow::Result<&Answer> {
    let answer = w.last()?;
    let content_type = answer.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    ensure!(content_type == "text/html; charset=utf-8", "not a page ({content_type}): {}", answer.text);
    Ok(answer)
}

/// The HTML of the keys table's row named `name`.
fn row_html(w: &Esqase, name: &str) -> anyhow::Result<String> {
    let html = &page(w)?.text;
    let cell = format!(r#"<th scope="row" class="key-name">{}</th>"#, escaped(name));
    html.split("<tr data-key-row>")
        .skip(1)
        .map(|row| row.split("</tr>").next().unwrap_or_default())
        .find(|row| row.contains(&cell))
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("the page has no row for {name:?}"))
}

#[when(regex = r#"^someone opens "([^"]+)" without signing in$"#)]
async fn opens_unsigned(w: &mut Esqase, path: String) -> anyhow::Result<()> {
    let request = browser()?.get(format!("{}{path}", w.base_url));
    send(w, request).await?;
    Ok(())
}

#[then(regex = r#"^(?:they are|she is|he is) sent to "([^"]+)"$"#)]
async fn sent_to(w: &mut Esqase, location: String) -> anyhow::Result<()> {
    let answer = w.last()?;
    let to = answer.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or_default();
    ensure!(answer.status == 303 && to == location, "expected 303 to {location}, got {} to {to:?}", answer.status);
    Ok(())
}

#[when(regex = r#"^(\w+) signs in from that page$"#)]
async fn signs_in_from_there(w: &mut Esqase, who: String) -> anyhow::Result<()> {
    let login = w.last()?.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    ensure!(login.starts_with("/login"), "not sent to sign in: {login:?}");
    let cookie = browser_session(w, &who).await?;
    // Signed in, the sign-in page sends the browser on to where the visit began.
    let request = browser()?.get(format!("{}{login}", w.base_url)).header("Cookie", cookie);
    send(w, request).await?;
    Ok(())
}

#[when(regex = r#"^(\w+) opens "([^"]+)" in (?:her|his|their) browser$"#)]
async fn opens_signed_in(w: &mut Esqase, who: String, path: String) -> anyhow::Result<()> {
    let cookie = browser_session(w, &who).await?;
    let request = browser()?.get(format!("{}{path}", w.base_url)).header("Cookie", cookie);
    send(w, request).await?;
    Ok(())
}

#[then(regex = r#"^the page reads "(.+)"$"#)]
async fn page_shows(w: &mut Esqase, text: String) -> anyhow::Result<()> {
    let answer = page(w)?;
    ensure!(answer.status == 200, "the page answered {}", answer.status);
    let readable = readable(&answer.text);
    ensure!(readable.contains(&text), "{text:?} is not on the page: {readable}");
    Ok(())
}

#[then(regex = r#"^the page does not read "(.+)"$"#)]
async fn page_does_not_show(w: &mut Esqase, text: String) -> anyhow::Result<()> {
    let readable = readable(&page(w)?.text);
    ensure!(!readable.contains(&text), "{text:?} is on the page: {readable}");
    Ok(())
}

#[then(regex = r#"^the page answers (\d+) and reads "(.+)"$"#)]
async fn page_answers(w: &mut Esqase, status: u16, text: String) -> anyhow::Result<()> {
    let answer = page(w)?;
    ensure!(answer.status == status, "the page answered {}, not {status}", answer.status);
    let readable = readable(&answer.text);
    ensure!(readable.contains(&text), "{text:?} is not on the page: {readable}");
    Ok(())
}

#[then(regex = r#"^the row of "([^"]+)" shows (".+")$"#)]
async fn row_shows(w: &mut Esqase, name: String, texts: String) -> anyhow::Result<()> {
    let row = readable(&row_html(w, &name)?);
    for text in quoted(&texts) {
        ensure!(row.contains(&text), "{text:?} is not in the row of {name:?}: {row}");
    }
    Ok(())
}

#[then(regex = r#"^the row of "([^"]+)" shows its masked preview and never its secret$"#)]
async fn row_shows_preview(w: &mut Esqase, name: String) -> anyhow::Result<()> {
    let key = w.key(&name)?.clone();
    let preview = key.created["preview"].as_str().context("the key's preview")?;
    let head = &key.secret[..10];
    let tail = &key.secret[key.secret.len() - 4..];
    ensure!(preview == format!("{head}…{tail}"), "the preview {preview:?} is prefix, ellipsis, last four");
    ensure!(readable(&row_html(w, &name)?).contains(preview), "the row of {name:?} lacks {preview}");
    ensure!(!page(w)?.text.contains(&key.secret), "the secret is on the page");
    Ok(())
}

#[then(regex = r#"^the row of "([^"]+)" offers "([^"]+)" and "([^"]+)"$"#)]
async fn row_offers(w: &mut Esqase, name: String, first: String, second: String) -> anyhow::Result<()> {
    let row = row_html(w, &name)?;
    for action in [first, second] {
        let labelled = row.contains(&format!(r#"aria-label="{}""#, escaped(&action)));
        ensure!(labelled || readable(&row).contains(&action), "the row of {name:?} offers no {action:?}: {row}");
    }
    Ok(())
}

#[then(regex = r#"^the row of "([^"]+)" shows "([^"]+)" and a dash for its actions$"#)]
async fn row_shows_dash(w: &mut Esqase, name: String, status: String) -> anyhow::Result<()> {
    let row = row_html(w, &name)?;
    ensure!(readable(&row).contains(&status), "the row of {name:?} is not {status}: {row}");
    let actions = row.rsplit("class=\"actions\">").next().unwrap_or_default();
    ensure!(readable(actions) == "—", "the row of {name:?} has actions: {actions}");
    ensure!(!row.contains("data-edit-domains") && !row.contains("data-menu-button"), "{row}");
    Ok(())
}

#[then(regex = r#"^the page reads "(.+)" as text$"#)]
async fn page_shows_as_text(w: &mut Esqase, text: String) -> anyhow::Result<()> {
    let html = &page(w)?.text;
    ensure!(html.contains(&escaped(&text)), "{text:?} is not shown");
    ensure!(!html.contains(&text), "{text:?} is in the page as markup");
    Ok(())
}

#[when(regex = r#"^a page on another site makes (\w+)'s browser create an API key$"#)]
async fn cross_site_create(w: &mut Esqase, who: String) -> anyhow::Result<()> {
    let cookie = browser_session(w, &who).await?;
    let request = browser()?
        .request(Method::POST, format!("{}/v1/api-keys", w.base_url))
        .header("Cookie", cookie)
        .header("Origin", "https://attacker.example")
        .header("Sec-Fetch-Site", "cross-site")
        .json(&json!({"name": "Planted", "scopes": ["contacts:read"]}));
    send(w, request).await?;
    Ok(())
}

#[when(regex = r#"^(\w+)'s own page creates an API key "([^"]+)" for "([^"]+)"$"#)]
async fn own_page_creates(w: &mut Esqase, who: String, name: String, scopes: String) -> anyhow::Result<()> {
    let cookie = browser_session(w, &who).await?;
    let request = browser()?
        .request(Method::POST, format!("{}/v1/api-keys", w.base_url))
        .header("Cookie", cookie)
        .header("Origin", w.base_url.clone())
        .header("Sec-Fetch-Site", "same-origin")
        .json(&json!({"name": name, "scopes": super::world::list(&scopes)}));
    send(w, request).await?;
    Ok(())
}
