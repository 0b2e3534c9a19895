//! Esqase's behaviour specs: every scenario in `features/*.feature` runs against its own service
//! (own Postgres database, own NATS prefix), started before the scenario and stopped after it.
//!
//! Scenarios tagged `@wip` are known to fail because of a reported service bug and are left out;
//! `ESQASE_SPECS_WIP=1` runs only those.

mod steps;

use cucumber::World as _;
use steps::world::Esqase;

#[tokio::main]
async fn main() {
    let features = concat!(env!("CARGO_MANIFEST_DIR"), "/features");
    let only_wip = std::env::var("ESQASE_SPECS_WIP").is_ok_and(|v| v == "1");
    Esqase::cucumber()
        .max_concurrent_scenarios(4)
        .fail_on_skipped()
        .after(|_feature, _rule, _scenario, _finished, world| {
            Box::pin(async move {
                if let Some(world) = world {
                    world.stop().await;
                }
            })
        })
        .filter_run_and_exit(features, move |_feature, _rule, scenario| {
            scenario.tags.iter().any(|tag| tag == "wip") == only_wip
        })
        .await;
}
