//! Guessing a password waits: failed sign-ins are counted per account and per client address,
//! past the limits attempts answer `429 too_many_attempts` with `Retry-After`, the right
//! password does not get through while they wait, every node refuses alike, and the firm's
//! audit log records it.

use serde_json::json;
use testkit::{join, sign_up, Answer, Client, TestApp, PASSWORD};

async fn log_in(client: &Client, email: &str, password: &str) -> Answer {
    client.post("/v1/sessions", None, &json!({"email": email, "password": password})).await
}

/// Fails `n` logins for `email`, asserting each is an ordinary 401.
async fn fail(client: &Client, email: &str, n: usize) {
    for attempt in 1..=n {
        let answer = log_in(client, email, "not the password at all").await;
        assert_eq!(answer.status, 401, "attempt {attempt}: {}", answer.text);
    }
}

fn retry_after(answer: &Answer) -> u64 {
    answer.header("retry-after").parse().unwrap_or_else(|_| panic!("a Retry-After in seconds: {:?}", answer.headers))
}

#[tokio::test]
async fn five_failures_make_the_account_wait_even_for_the_right_password_and_a_success_clears_them() {
    let app = TestApp::spawn().await.expect("the service starts");
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@throttle.test").await;

    fail(&client, &owner.email, 5).await;
    let waiting = log_in(&client, &owner.email, PASSWORD).await;
    waiting.assert_problem(429, "too_many_attempts");
    assert_eq!(retry_after(&waiting), 1, "the first wait is a second");

    // Once the wait is over, the right password works, and the count starts again from nothing.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let signed_in = log_in(&client, &owner.email, PASSWORD).await;
    assert_eq!(signed_in.status, 201, "{}", signed_in.text);
    fail(&client, &owner.email, 4).await;
    let still_fine = log_in(&client, &owner.email, PASSWORD).await;
    assert_eq!(still_fine.status, 201, "four failures after a success are under the limit: {}", still_fine.text);
    app.stop().await.expect("the service stops");
}

#[tokio::test]
async fn each_further_failure_doubles_the_wait() {
    let app = TestApp::spawn().await.expect("the service starts");
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@doubling.test").await;
    fail(&client, &owner.email, 5).await;
    assert_eq!(retry_after(&log_in(&client, &owner.email, PASSWORD).await), 1);
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    fail(&client, &owner.email, 1).await;
    let waiting = log_in(&client, &owner.email, PASSWORD).await;
    waiting.assert_problem(429, "too_many_attempts");
    assert_eq!(retry_after(&waiting), 2, "the sixth failure waits twice as long");
    app.stop().await.expect("the service stops");
}

#[tokio::test]
async fn an_unknown_email_counts_the_same_as_a_known_one() {
    let app = TestApp::spawn().await.expect("the service starts");
    let client = Client::new(&app);
    fail(&client, "nobody@nowhere.test", 5).await;
    log_in(&client, "  Nobody@Nowhere.test ", "anything").await.assert_problem(429, "too_many_attempts");
    app.stop().await.expect("the service stops");
}

#[tokio::test]
async fn many_failures_from_one_address_make_every_account_wait_from_there() {
    let mut settings = testkit::isolated_settings();
    settings.sign_in.sign_in_address_failures = 6;
    let app = TestApp::spawn_with(settings).await.expect("the service starts");
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@address.test").await;
    // Seven accounts, one failure each: no account is near its limit; the address is past its.
    for n in 0..7 {
        fail(&client, &format!("guess{n}@address.test"), 1).await;
    }
    log_in(&client, &owner.email, PASSWORD).await.assert_problem(429, "too_many_attempts");
    app.stop().await.expect("the service stops");
}

#[tokio::test]
async fn a_wrong_invitation_token_counts_as_a_failed_sign_in() {
    let app = TestApp::spawn().await.expect("the service starts");
    let client = Client::new(&app);
    let guess = format!("esqi_{}", "a".repeat(32));
    for attempt in 1..=5 {
        let answer = client.post("/v1/invitations/accept", None, &json!({"token": guess, "password": PASSWORD})).await;
        assert_eq!(answer.status, 401, "attempt {attempt}: {}", answer.text);
    }
    let waiting = client.post("/v1/invitations/accept", None, &json!({"token": guess, "password": PASSWORD})).await;
    waiting.assert_problem(429, "too_many_attempts");
    app.stop().await.expect("the service stops");
}

#[tokio::test]
async fn a_node_that_was_not_asked_refuses_too() {
    let app = TestApp::spawn().await.expect("the service starts");
    let mut settings = app.settings.clone();
    settings.listen = "127.0.0.1:0".parse().expect("an address");
    let other = TestApp::spawn_with(settings).await.expect("a second node starts");
    let (a, b) = (Client::new(&app), Client::new(&other));
    let owner = sign_up(&a, "Acme Law", "olivia@nodes.test").await;
    fail(&a, &owner.email, 5).await;
    log_in(&b, &owner.email, PASSWORD).await.assert_problem(429, "too_many_attempts");
    other.stop().await.expect("the second node stops");
    app.stop().await.expect("the service stops");
}

#[tokio::test]
async fn the_firm_sees_that_an_account_was_throttled_and_nothing_that_was_typed() {
    let app = TestApp::spawn().await.expect("the service starts");
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@audited.test").await;
    let staff = join(&client, &owner, "Sam Staff", "sam@audited.test", "staff").await;
    fail(&client, &staff.email, 5).await;
    log_in(&client, &staff.email, PASSWORD).await.assert_problem(429, "too_many_attempts");

    let log = client.get("/v1/audit-log?action=member.sign_in_throttled", &owner.token).await;
    assert_eq!(log.status, 200, "{}", log.text);
    let entries = log.body["data"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "one entry for one run of failures: {}", log.text);
    let entry = &entries[0];
    assert_eq!(entry["actor"]["type"], "system");
    assert_eq!(entry["target"]["id"], staff.member_id.as_str());
    assert_eq!(entry["target"]["name"], "Sam Staff");
    assert_eq!(entry["details"], json!({"failures": 5}));
    assert!(!log.text.contains("not the password") && !log.text.contains("127.0.0.1"), "{}", log.text);

    // The member's stream goes on: a role change after it still applies.
    let changed =
        client.patch(&format!("/v1/members/{}", staff.member_id), &owner.token, &json!({"role": "attorney"})).await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.body["role"], "attorney");
    let verified = client.get("/v1/audit-log/verify", &owner.token).await;
    assert_eq!(verified.body["ok"], true, "{}", verified.text);
    app.stop().await.expect("the service stops");
}
