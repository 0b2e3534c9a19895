//! What the load tools share: a firm signed up straight through the commands layer, with its
//! owner signed in to manage its API keys.

use anyhow::Context;
use commands::auth::{Authorized, ManagesApiKeys};
use commands::firms::{NewFirm, NewOwner, Signup};
use commands::{read_back, Commands};
use domain::names::{Email, FirmName, FirmTimeZone, Password, PersonName};

/// Signs up `firm_name` with an owner at `owner_email`, and authenticates the owner's session,
/// authorized to manage the firm's API keys.
pub async fn sign_up_firm(
    commands: &Commands,
    firm_name: &str,
    owner_email: &str,
) -> anyhow::Result<(Signup, Authorized<ManagesApiKeys>)> {
    let firm = NewFirm {
        name: FirmName::parse(firm_name)?,
        time_zone: FirmTimeZone::default(),
        owner: NewOwner {
            name: PersonName::parse("Bench Owner")?,
            email: Email::parse(owner_email)?,
            password: Password::parse("correct horse battery staple")?,
        },
    };
    let (signup, ()) = commands
        .sign_up(firm, None, read_back::nothing)
        .await
        .map_err(|e| anyhow::anyhow!("signing the firm up: {e:?}"))?;
    let owner = commands::auth::authenticate(&commands.log.pool, &signup.session.token, commands::log::now())
        .await
        .map_err(|e| anyhow::anyhow!("reading the owner's session: {e:?}"))?
        .context("the owner's new session does not authenticate")?
        .authorize::<ManagesApiKeys>()
        .map_err(|e| anyhow::anyhow!("the owner may not manage API keys: {e:?}"))?;
    Ok((signup, owner))
}

/// Logs warnings and worse to stderr (`RUST_LOG` overrides): stdout carries the tools' figures.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,sqlx=error")),
        )
        .with_writer(std::io::stderr)
        .init();
}
