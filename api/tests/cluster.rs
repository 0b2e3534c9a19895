//! The promise "the very next request that uses a revoked key is rejected, on every node",
//! under the neighbours a shared Postgres cluster and a shared NATS have in real life: a
//! transaction left open in another database, an idle-in-transaction session in this one, a
//! node that stops confirming, a small connection pool under concurrent commands.

use serde_json::json;
use sqlx::Connection;
use std::sync::Arc;
use std::time::Duration;
use testkit::*;
use tokio::time::Instant;

async fn current(client: &Client, secret: &str) -> u16 {
    client.current_key(secret).await.status
}

/// Hammers `/v1/api-keys/current` with `secret` on each node until `stop_after` is set and 300 ms
/// have passed it; returns each request's start time and status.
fn load(
    nodes: &[Client],
    secret: &str,
    stop_after: &Arc<tokio::sync::OnceCell<Instant>>,
) -> Vec<tokio::task::JoinHandle<Vec<(Instant, u16)>>> {
    nodes
        .iter()
        .cloned()
        .map(|node| {
            let (secret, stop_after) = (secret.to_owned(), stop_after.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                loop {
                    let started = Instant::now();
                    seen.push((started, current(&node, &secret).await));
                    if stop_after.get().is_some_and(|at| started > *at + Duration::from_millis(300)) {
                        return seen;
                    }
                }
            })
        })
        .collect()
}

/// Asserts that every request begun after `revoked` was refused; returns (accepted before, refused after).
async fn judge(load: Vec<tokio::task::JoinHandle<Vec<(Instant, u16)>>>, revoked: Instant) -> (usize, usize) {
    let (mut before, mut after) = (0, 0);
    for task in load {
        for (started, status) in task.await.expect("a load task") {
            if started > revoked {
                assert_eq!(status, 401, "a request begun after the revoke returned was answered {status}");
                after += 1;
            } else if status == 200 {
                before += 1;
            }
        }
    }
    (before, after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_transactions_left_open_elsewhere_on_the_cluster_a_revoke_answers_at_once_and_binds_every_node(
) -> anyhow::Result<()> {
    let first = TestApp::spawn().await?;
    let second = first.spawn_beside().await?;
    let (a, b) = (Client::new(&first), Client::new(&second));
    let owner = sign_up(&a, "Acme Law", &format!("o{}@acme.test", random_uuid())).await;

    // A batch job in another database of the same cluster, and a forgotten psql session in this
    // one: each holds a transaction id for the whole test.
    let neighbour_url = testkit::isolated_settings().database_url;
    commands::db::connect(&neighbour_url, 1).await?.close().await;
    let mut batch_job = sqlx::PgConnection::connect(&neighbour_url).await?;
    sqlx::query("BEGIN").execute(&mut batch_job).await?;
    sqlx::query("SELECT txid_current()").execute(&mut batch_job).await?;
    let mut forgotten = sqlx::PgConnection::connect(&first.settings.database_url).await?;
    sqlx::query("BEGIN").execute(&mut forgotten).await?;
    sqlx::query("SELECT txid_current()").execute(&mut forgotten).await?;

    // A key created on A works on B as soon as its create response has returned.
    let created = create_key(&a, &owner, &key_named("Sync")).await;
    let secret = created["secret"].as_str().expect("a secret").to_owned();
    let id = created["api_key"]["id"].as_str().expect("an id").to_owned();
    assert_eq!(current(&b, &secret).await, 200, "a new key works on the other node at once");

    let revoked_at = Arc::new(tokio::sync::OnceCell::new());
    let load = load(&[a.clone(), b.clone(), b.clone()], &secret, &revoked_at);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let revoke = a.post(&format!("/v1/api-keys/{id}/revoke"), Some(&owner.token), &json!({})).await;
    let took = started.elapsed();
    assert_eq!(revoke.status, 200, "{}", revoke.text);
    revoked_at.set(Instant::now())?;
    let (before, after) = judge(load, *revoked_at.get().expect("set")).await;
    assert!(before > 0 && after > 0, "requests flowed before ({before}) and after ({after}) the revoke");
    // Its usual latency: nowhere near the lease the barrier falls back to when a node is silent.
    assert!(took < Duration::from_millis(900), "the revoke took {took:?} with other transactions open");
    assert_eq!(a.metric("esqase_barrier_outwaited_total").await, 0, "every commit was confirmed by B");

    sqlx::query("ROLLBACK").execute(&mut forgotten).await?;
    sqlx::query("ROLLBACK").execute(&mut batch_job).await?;
    batch_job.close().await?;
    forgotten.close().await?;
    commands::db::drop_database(&neighbour_url).await?;
    second.stop().await?;
    first.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_that_stops_confirming_is_outwaited_before_the_command_answers() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", &format!("o{}@acme.test", random_uuid())).await;
    let created = create_key(&client, &owner, &key_named("Sync")).await;
    let id = created["api_key"]["id"].as_str().expect("an id").to_owned();

    // A peer that is heard (its heartbeats arrive) but hangs: it never confirms a commit.
    let nats = async_nats::connect(&app.settings.nats_url).await?;
    let names = commands::nats::NatsNames::new(&app.settings.nats_prefix)?;
    let subject = names.cluster_subject("hb", uuid::Uuid::now_v7());
    let hung = tokio::spawn({
        let nats = nats.clone();
        async move {
            loop {
                let _ = nats.publish(subject.clone(), "0".into()).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    let revoke = client.post(&format!("/v1/api-keys/{id}/revoke"), Some(&owner.token), &json!({})).await;
    let took = started.elapsed();
    assert_eq!(revoke.status, 200, "a committed change never answers an error: {}", revoke.text);
    // Until the hung peer's lease has surely run out, it might still answer from the old state.
    assert!(took >= projections::cluster::LEASE, "the revoke answered after {took:?}, inside the peer's lease");
    assert!(client.metric("esqase_barrier_outwaited_total").await >= 1);
    hung.abort();
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_small_pool_takes_many_concurrent_commands_of_one_firm_without_refusing_any() -> anyhow::Result<()> {
    // The relay keeps one connection of its own; commands share the rest. Nothing a command
    // does after its commit may need another.
    let mut settings = testkit::isolated_settings();
    settings.db_max_connections = 4;
    let app = TestApp::spawn_with(settings).await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", &format!("o{}@acme.test", random_uuid())).await;
    let creations: Vec<_> = (0..48)
        .map(|n| {
            let (client, owner) = (client.clone(), owner.clone());
            tokio::spawn(async move {
                client.post("/v1/api-keys", Some(&owner.token), &key_named(&format!("Sync {n}"))).await
            })
        })
        .collect();
    for creation in creations {
        let answer = creation.await?;
        assert_eq!(answer.status, 201, "{}", answer.text);
    }
    let listed = client.get("/v1/api-keys?limit=100", &owner.token).await;
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(48), "{}", listed.text);
    app.stop().await
}
