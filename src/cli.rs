//! Command line: one binary, one subcommand per job. Exit codes: 0 ok, 1 runtime failure,
//! 2 usage or configuration error. Errors are one line: what, where, how to fix.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

use crate::app::{AppError, Application, open_store, shutdown_signal};
use crate::config::Config;
use crate::store::redact_url;

#[derive(Debug, Parser)]
#[command(
    name = "c4c-scim-bridge",
    version,
    about = "SCIM 2.0 server that provisions users and groups into SAP Cloud for Customer",
    after_help = "Start with `c4c-scim-bridge demo`: a bridge on an embedded store, ready to try."
)]
pub struct Cli {
    /// TOML configuration file; environment variables C4C_SCIM_BRIDGE__SECTION__KEY override it.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "C4C_SCIM_BRIDGE_CONFIG"
    )]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the SCIM server.
    #[command(
        after_help = "Example:\n  c4c-scim-bridge serve --config /etc/c4c-scim-bridge/config.toml"
    )]
    Serve {
        /// Listen address, overriding server.listen.
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Apply pending database migrations and exit (idempotent).
    #[command(after_help = "Example:\n  c4c-scim-bridge migrate --config config.toml")]
    Migrate,
    /// Validate the configuration without starting anything.
    #[command(after_help = "Example:\n  c4c-scim-bridge check --config deploy/config.example.toml")]
    Check,
    /// Run a self-contained demo on the embedded store.
    #[command(after_help = "Example:\n  c4c-scim-bridge demo --listen 127.0.0.1:8080")]
    Demo {
        /// Listen address; by default 127.0.0.1:8080, or a free port if that one is taken.
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Probe a running bridge's /healthz; exits 0 when healthy (for container HEALTHCHECK).
    #[command(
        after_help = "Example:\n  c4c-scim-bridge health --url http://127.0.0.1:8080/healthz"
    )]
    Health {
        #[arg(long, default_value = "http://127.0.0.1:8080/healthz")]
        url: String,
    },
    /// Print the version.
    #[command(after_help = "Example:\n  c4c-scim-bridge version")]
    Version,
}

/// Runs a parsed command line and returns the process exit code.
pub async fn run(cli: Cli) -> u8 {
    match dispatch(cli).await {
        Ok(()) => 0,
        Err(error) => {
            // One line, never a backtrace.
            eprintln!("error: {}", first_line(&error.to_string()));
            error.exit_code()
        }
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

fn load_config(cli_path: Option<&PathBuf>) -> Result<Config, AppError> {
    let config = Config::load(cli_path.map(PathBuf::as_path))?;
    crate::telemetry::init(&config.log);
    Ok(config)
}

async fn dispatch(cli: Cli) -> Result<(), AppError> {
    match cli.command {
        Command::Version => {
            println!("c4c-scim-bridge {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Health { url } => probe_health(&url).await,
        Command::Check => {
            let config = load_config(cli.config.as_ref())?;
            let url = config.store.resolved_url()?;
            let source = cli
                .config
                .as_ref()
                .map(|path| path.display().to_string())
                .unwrap_or_else(|| "defaults and environment".to_owned());
            println!("configuration OK ({source})");
            println!("  listen:  {}", config.server.listen);
            println!("  scim:    {}", config.server.base_path);
            println!("  store:   {}", redact_url(url.expose_secret()));
            Ok(())
        }
        Command::Migrate => {
            let config = load_config(cli.config.as_ref())?;
            let store = open_store(&config, false).await?;
            let applied = store.migrate().await?;
            println!("migrations: {applied} applied, store is up to date");
            store.close().await;
            Ok(())
        }
        Command::Serve { listen } => {
            let mut config = load_config(cli.config.as_ref())?;
            if let Some(listen) = listen {
                config.server.listen = listen;
            }
            let store = open_store(&config, config.store.migrate_on_start).await?;
            let app = Application::build(config, store).await?;
            tracing::info!(addr = %app.local_addr()?, "serving");
            app.run_until(shutdown_signal()).await
        }
        Command::Demo { listen } => {
            let mut config = load_config(cli.config.as_ref())?;
            let store = open_store(&config, config.store.migrate_on_start).await?;
            let listener = bind_demo_listener(listen).await?;
            config.server.listen = listener
                .local_addr()
                .map_err(|error| AppError::Serve(error.to_string()))?;
            let app = Application::from_listener(listener, config, store);
            let addr = app.local_addr()?;
            println!("c4c-scim-bridge demo listening on http://{addr}");
            println!("  health:    curl http://{addr}/healthz");
            println!("  readiness: curl http://{addr}/readyz");
            println!("Press Ctrl-C to stop.");
            app.run_until(shutdown_signal()).await
        }
    }
}

/// The demo's address: the one asked for, else 127.0.0.1:8080, else any free port.
async fn bind_demo_listener(
    listen: Option<SocketAddr>,
) -> Result<tokio::net::TcpListener, AppError> {
    let bind = |addr: SocketAddr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|error| AppError::Bind {
                addr,
                reason: error.to_string(),
            })
    };
    match listen {
        Some(addr) => bind(addr).await,
        None => match bind(SocketAddr::from(([127, 0, 0, 1], 8080))).await {
            Ok(listener) => Ok(listener),
            Err(_) => bind(SocketAddr::from(([127, 0, 0, 1], 0))).await,
        },
    }
}

async fn probe_health(url: &str) -> Result<(), AppError> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()
        .map_err(|error| AppError::Serve(error.to_string()))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|error| AppError::Serve(format!("{url} did not answer: {error}")))?;
    if response.status().is_success() {
        println!("healthy ({})", response.status());
        Ok(())
    } else {
        Err(AppError::Serve(format!(
            "{url} answered {}",
            response.status()
        )))
    }
}
