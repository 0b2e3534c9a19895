//! Esqase's behaviour specs: every scenario in `features/*.feature` runs against its own service
//! (own Postgres database, own NATS prefix), started before the scenario and stopped after it.

mod steps;

use cucumber::World as _;
use steps::world::Esqase;

#[tokio::main]
async fn main() {
    let features = concat!(env!("CARGO_MANIFEST_DIR"), "/features");
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
        .run_and_exit(features)
        .await;
}
