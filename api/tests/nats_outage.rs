//! Two nodes on one Postgres and a NATS server of the test's own, stopped mid-test: commands
//! keep succeeding, nothing stale is accepted, and both nodes converge when NATS returns.

use futures::StreamExt;
use serde_json::json;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use testkit::*;
use tokio::time::Instant;

/// A nats-server of this test's own (never the machine's shared one), killed on drop.
struct PrivateNats {
    child: Child,
    port: u16,
    store: PathBuf,
}

impl PrivateNats {
    fn start(port: u16, store: PathBuf) -> PrivateNats {
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server runs");
        PrivateNats { child, port, store }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    async fn ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_err() {
            assert!(Instant::now() < deadline, "the private nats-server came up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn stop(mut self) -> (u16, PathBuf) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.port, self.store.clone())
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A nats-server of the test's own, ready, and two nodes on one database that use it.
async fn two_nodes_on_a_private_nats() -> anyhow::Result<(PrivateNats, TestApp, TestApp)> {
    let _ = tracing_subscriber::fmt().with_env_filter("info,async_nats=warn").with_test_writer().try_init();
    let store = std::env::temp_dir().join(format!("esqase-nats-{}", random_uuid()));
    let nats = PrivateNats::start(free_port(), store);
    nats.ready().await;
    let mut settings = testkit::isolated_settings();
    settings.nats_url = nats.url();
    let first = TestApp::spawn_with(settings.clone()).await?;
    let second = TestApp::spawn_with(settings).await?;
    Ok((nats, first, second))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

async fn status(client: &Client, secret: &str) -> u16 {
    client.current_key(secret).await.status
}

async fn until(what: &str, check: impl AsyncFn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn nats_reported(client: &Client, up: bool) -> bool {
    let ready = Client::answer(client.http.get(format!("{}/readyz", client.base_url))).await;
    ready.body["nats"] == json!(up) && (!up || ready.status == 200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_nats_stopped_commands_succeed_nothing_stale_is_accepted_and_nodes_converge() -> anyhow::Result<()> {
    let (nats, first, second) = two_nodes_on_a_private_nats().await?;
    let (a, b) = (Client::new(&first), Client::new(&second));
    let owner = sign_up(&a, "Acme Law", &format!("o{}@acme.test", random_uuid())).await;
    let doomed = create_key(&a, &owner, &key_named("Doomed")).await;
    let kept = create_key(&a, &owner, &key_named("Kept")).await;
    let doomed_secret = doomed["secret"].as_str().expect("a secret");
    let kept_secret = kept["secret"].as_str().expect("a secret");
    assert_eq!(status(&b, doomed_secret).await, 200);

    let (port, store) = nats.stop();
    until("both nodes to see NATS gone", async || nats_reported(&a, false).await && nats_reported(&b, false).await)
        .await;

    let started = Instant::now();
    let id = doomed["api_key"]["id"].as_str().expect("an id");
    let revoked = a.post(&format!("/v1/api-keys/{id}/revoke"), Some(&owner.token), &json!({})).await;
    assert_eq!(revoked.status, 200, "commands still succeed: {}", revoked.text);
    assert!(started.elapsed() < Duration::from_secs(3), "and promptly: {:?}", started.elapsed());
    for node in [&a, &b] {
        assert_eq!(status(node, doomed_secret).await, 401, "no node accepts the revoked key");
        assert_eq!(status(node, kept_secret).await, 200, "other keys keep working");
    }
    let late = create_key(&a, &owner, &key_named("Made while NATS was down")).await;
    let late_secret = late["secret"].as_str().expect("a secret");
    assert_eq!(status(&b, late_secret).await, 200, "a key made meanwhile works on every node");

    let nats = PrivateNats::start(port, store.clone());
    nats.ready().await;
    let back = Instant::now();
    until("both nodes to be ready again", async || nats_reported(&a, true).await && nats_reported(&b, true).await)
        .await;
    // Both nodes' feed readers follow JetStream again: a consumer each on the feed's stream
    // (a restarted server has forgotten the ephemeral ones), within 2 s of NATS returning.
    let names = commands::nats::NatsNames::new(&first.settings.nats_prefix)?;
    let jetstream = async_nats::jetstream::new(async_nats::connect(nats.url()).await?);
    until("both feed readers to follow JetStream again", async || {
        let Ok(stream) = jetstream.get_stream(names.stream()).await else { return false };
        let consumers: Vec<_> = stream.consumer_names().collect().await;
        consumers.len() >= 2
    })
    .await;
    assert!(back.elapsed() < Duration::from_secs(2), "the feed readers came back after {:?}", back.elapsed());
    for node in [&a, &b] {
        assert_eq!(status(node, doomed_secret).await, 401);
        assert_eq!(status(node, kept_secret).await, 200);
        assert_eq!(status(node, late_secret).await, 200);
    }

    second.stop().await?;
    first.stop().await?;
    drop(nats);
    let _ = std::fs::remove_dir_all(store);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_nats_stopped_each_node_counts_an_equal_share_of_a_keys_rate_limit() -> anyhow::Result<()> {
    let (nats, first, second) = two_nodes_on_a_private_nats().await?;
    let (a, b) = (Client::new(&first), Client::new(&second));
    let owner = sign_up(&a, "Acme Law", &format!("o{}@acme.test", random_uuid())).await;
    let body =
        json!({"name": "Shared", "scopes": ["contacts:read"], "rate_limit": {"limit": 10, "window_seconds": 3600}});
    let key = create_key(&a, &owner, &body).await;
    let secret = key["secret"].as_str().expect("a secret");
    // Each node has heard the other before NATS goes: two nodes share the limit.
    until("each node to hear the other", async || a.metric("esqase_barrier_confirmed_total").await > 0).await;
    // Far from the end of the hour, so one window holds the whole test.
    with_time_left_in_the_window(3600, Duration::from_secs(30)).await;

    let (_port, store) = nats.stop();
    until("both nodes to see NATS gone", async || nats_reported(&a, false).await && nats_reported(&b, false).await)
        .await;
    let mut admitted = 0;
    for node in [&a, &b] {
        for _ in 0..8 {
            match status(node, secret).await {
                200 => admitted += 1,
                429 => {}
                other => panic!("a limited key got {other}"),
            }
        }
    }
    assert_eq!(admitted, 10, "each of the two nodes admitted its half of the limit, and no more");
    assert!(a.metric("esqase_rate_limit_fallbacks_total").await >= 1);

    second.stop().await?;
    first.stop().await?;
    let _ = std::fs::remove_dir_all(store);
    Ok(())
}
