//! What the event log and relay tests share: a database of their own, events to append, a NATS
//! prefix of their own, and a private `nats-server` that a test can stop and start.
//!
//! Every resource a test makes is removed when its guard drops, also when the test panics, so
//! the tests run in parallel, twice in a row, and next to other test runs on the same servers.

#![allow(dead_code)] // Each test file uses a different part of this module.

use async_nats::jetstream;
use commands::nats::NatsNames;
use commands::store::{self, Append, Metadata, RecordedEvent};
use commands::{EventLog, NoBarrier, NoReadModels};
use domain::{Actor, Event, FirmId};
use sqlx::PgPool;
use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long a test waits for anything that should happen soon before it fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// How often a test polls while it waits.
pub const POLL: Duration = Duration::from_millis(20);

/// Runs `future` to completion on a runtime of its own, on a thread of its own: for clean-up in
/// `Drop`, which may run inside (or outside) the test's runtime.
fn block_on_detached<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a clean-up runtime").block_on(future)
    })
    .join()
    .expect("clean-up thread")
}

/// Polls `check` until it returns `Some`, or panics with `what` once [`DEADLINE`] has passed.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {DEADLINE:?} waiting until {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// A database of the test's own, with the migrations applied, dropped when this drops.
pub struct TestDb {
    /// A pool on it.
    pub pool: PgPool,
    url: String,
}

impl TestDb {
    /// Creates `esqase_test_<uuid>` on the server of `DATABASE_URL`, with a pool of up to
    /// `max_connections`.
    pub async fn new(max_connections: u32) -> TestDb {
        // Version 7: the name tells its age, for scripts/test.sh's sweep of left-overs.
        let url = database_url(&format!("esqase_test_{}", Uuid::now_v7().simple()));
        let pool = commands::db::connect(&url, max_connections)
            .await
            .unwrap_or_else(|e| panic!("cannot create the test database (is Postgres running at DATABASE_URL?): {e}"));
        TestDb { pool, url }
    }

    /// Its URL (for a second pool, as a second node would have).
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let url = self.url.clone();
        if let Err(error) = block_on_detached(async move { commands::db::drop_database(&url).await }) {
            eprintln!("could not drop test database {}: {error}", self.url);
        }
    }
}

/// The URL of database `name` on the server of `DATABASE_URL`.
pub fn database_url(name: &str) -> String {
    let base = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let (without_query, query) = match base.split_once('?') {
        Some((url, query)) => (url, format!("?{query}")),
        None => (base.as_str(), String::new()),
    };
    let authority_start = without_query.find("://").map_or(0, |i| i + 3);
    let server = match without_query[authority_start..].find('/') {
        Some(slash) => &without_query[..authority_start + slash],
        None => without_query,
    };
    format!("{server}/{name}{query}")
}

/// Metadata of a system event of `firm`, at the contract's precision.
pub fn metadata(firm: FirmId) -> Metadata {
    Metadata { firm_id: firm, actor: Actor::System, request_id: None, occurred_at: commands::log::now() }
}

/// An event with nothing in it: the log tests care about where events go, not what they say.
pub fn event() -> Event {
    Event::MemberRemoved {}
}

/// One event for `stream` at `expected_version`.
pub fn one(stream_id: Uuid, expected_version: i32) -> Append {
    Append { stream_id, expected_version, events: vec![event()] }
}

/// Appends `appends` in a transaction of its own and commits.
pub async fn append_committed(
    pool: &PgPool,
    metadata: &Metadata,
    appends: &[Append],
) -> Result<Vec<RecordedEvent>, store::StoreError> {
    let mut tx = store::WriterTx::begin(pool, None).await?;
    let recorded = store::append(&mut tx, metadata, appends).await?;
    tx.commit().await?;
    Ok(recorded)
}

/// Every event a feed reader can see, from the start, in feed order.
pub async fn whole_feed(pool: &PgPool) -> Vec<RecordedEvent> {
    let mut events = Vec::new();
    let mut at = store::FeedPosition::START;
    loop {
        let batch = store::read_feed(pool, at, 1000).await.expect("read the feed");
        let Some(last) = batch.last() else { return events };
        at = last.feed;
        events.extend(batch);
    }
}

/// The event log as commands use it, without read models or a barrier.
pub fn event_log(pool: &PgPool) -> EventLog {
    EventLog::new(pool.clone(), Arc::new(NoReadModels), Arc::new(NoBarrier), Default::default())
}

/// Appends one event to `stream` at `expected_version` as a command does (a firm-serialized
/// transaction, committed, the relay woken).
pub async fn command(log: &EventLog, firm: FirmId, stream_id: Uuid, expected_version: i32) -> RecordedEvent {
    let mut tx = log.begin(firm).await.expect("begin a command");
    let recorded = log.append(&mut tx, &metadata(firm), &[one(stream_id, expected_version)]).await.expect("append");
    log.commit(tx, &recorded).await.expect("commit");
    recorded.into_iter().next().expect("one event recorded")
}

/// A NATS prefix of the test's own.
pub fn nats_names() -> NatsNames {
    NatsNames::new(&format!("t{}", Uuid::new_v4().simple())).expect("a valid prefix")
}

/// The shared NATS server's URL.
pub fn shared_nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A client that keeps reconnecting, quickly, for as long as it lives (as the service's does).
pub async fn nats_client(url: &str) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(|_| Duration::from_millis(100))
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to NATS at {url}: {e}"))
}

/// A JetStream context whose publish acknowledgements time out soon, so that a relay facing a
/// dead server gives up on a batch and retries within the tests' deadlines.
pub fn jetstream_context(client: &async_nats::Client) -> jetstream::Context {
    let mut context = jetstream::new(client.clone());
    context.set_timeout(Duration::from_secs(2));
    context
}

/// The test's JetStream stream on a shared server, deleted when this drops.
pub struct StreamGuard {
    url: String,
    name: String,
}

impl StreamGuard {
    /// Guards the stream `names` describes, on the server at `url`.
    pub fn new(url: &str, names: &NatsNames) -> StreamGuard {
        StreamGuard { url: url.to_owned(), name: names.stream() }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        let outcome = block_on_detached(async move {
            let client = async_nats::connect(&url).await.map_err(|e| e.to_string())?;
            jetstream::new(client).delete_stream(&name).await.map(|_| ()).map_err(|e| e.to_string())
        });
        if let Err(error) = outcome {
            eprintln!("could not delete JetStream stream {}: {error}", self.name);
        }
    }
}

/// Every message of `stream`, by sequence, from the first.
pub async fn stream_messages(stream: &jetstream::stream::Stream) -> Vec<jetstream::message::StreamMessage> {
    let last = stream.get_info().await.expect("stream info").state.last_sequence;
    let mut messages = Vec::new();
    for sequence in 1..=last {
        messages.push(stream.get_raw_message(sequence).await.expect("read a stream message"));
    }
    messages
}

/// How many messages `stream` holds.
pub async fn stream_len(stream: &jetstream::stream::Stream) -> Option<u64> {
    stream.get_info().await.ok().map(|info| info.state.messages)
}

/// A `nats-server` of the test's own, with JetStream, on a fixed port and store directory, so
/// that it can be stopped and started again as "the same server". Killed when this drops.
pub struct NatsServer {
    child: Child,
    port: u16,
    store: PathBuf,
}

impl NatsServer {
    /// Starts one on a free port, storing in `store`, and waits until it accepts connections.
    pub fn start(store: &Path) -> NatsServer {
        let port = TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address").port();
        NatsServer::start_on(port, store)
    }

    /// Starts one on `port`, storing in `store`, and waits until it accepts connections.
    pub fn start_on(port: u16, store: &Path) -> NatsServer {
        let binary = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".into());
        let child = Command::new(&binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary} (set NATS_SERVER_BIN): {e}"));
        let mut server = NatsServer { child, port, store: store.to_owned() };
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + DEADLINE;
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if let Some(status) = server.child.try_wait().expect("nats-server status") {
                panic!("nats-server on port {port} exited at start-up: {status}");
            }
            assert!(Instant::now() < deadline, "nats-server on port {port} did not accept connections in time");
            std::thread::sleep(POLL);
        }
        server
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops it, then starts it again on the same port with the same store.
    pub fn restart(self) -> NatsServer {
        let (port, store) = (self.port, self.store.clone());
        drop(self);
        NatsServer::start_on(port, &store)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its store directory.
    pub fn store(&self) -> &Path {
        &self.store
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        // SIGKILL: the harshest way a server goes away; JetStream must recover from its store.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
