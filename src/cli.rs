//! Command line: one binary, one subcommand per job. Exit codes: 0 ok, 1 runtime failure,
//! 2 usage or configuration error. Errors are one line: what, where, how to fix.

mod security;

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
    /// Validate the configuration without starting anything; with --metadata or --tenant, also
    /// check every mapping rule against the tenant's $metadata.
    #[command(
        after_help = "Examples:\n  c4c-scim-bridge check --config deploy/config.example.toml\n  c4c-scim-bridge check --config config.toml --tenant\n  c4c-scim-bridge check --config config.toml --metadata tenant-metadata.xml"
    )]
    Check {
        #[command(flatten)]
        metadata: MetadataSource,
    },
    /// Map a SCIM user (JSON on standard input) to the OData payload C4C would get, with the
    /// trace of the rules applied. Nothing is sent.
    #[command(
        after_help = "Example:\n  c4c-scim-bridge map --config config.toml --metadata tenant-metadata.xml < user.json"
    )]
    Map {
        #[command(flatten)]
        metadata: MetadataSource,
    },
    /// Run a self-contained demo: the bridge on the embedded store, with a built-in C4C simulator.
    #[command(after_help = "Example:\n  c4c-scim-bridge demo --listen 127.0.0.1:8080")]
    Demo {
        /// Listen address; by default 127.0.0.1:8080, or a free port if that one is taken.
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// Latency the built-in C4C simulator adds to every call, in milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 0)]
        sim_latency_ms: u64,
    },
    /// Probe a running bridge's /healthz; exits 0 when healthy (for container HEALTHCHECK).
    #[command(
        after_help = "Example:\n  c4c-scim-bridge health --url http://127.0.0.1:8080/healthz"
    )]
    Health {
        #[arg(long, default_value = "http://127.0.0.1:8080/healthz")]
        url: String,
    },
    /// Manage the bearer tokens SCIM clients (Entra ID, Okta…) authenticate with.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Deprovisionings held by the circuit breaker: list, release (apply) or discard them.
    #[command(subcommand)]
    Held(HeldCommand),
    /// Reverse the lock and validity changes the bridge applied in a time range (batched,
    /// idempotent: employees already restored are left alone).
    #[command(
        after_help = "Examples:\n  c4c-scim-bridge undo --since 2h --dry-run\n  c4c-scim-bridge undo --since 2026-11-23T08:00:00Z --client entra-prod --by alice"
    )]
    Undo {
        /// Start of the range: an RFC 3339 time, or a duration ago such as 2h or 30m.
        #[arg(long, value_name = "TIME")]
        since: String,
        /// End of the range (exclusive); default now.
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// Only the changes of this identity-provider client (its token name).
        #[arg(long)]
        client: Option<String>,
        /// Show what would be restored; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Who decides, for the mapping log (default: $USER).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
    /// Compare C4C's employees with what the bridge last wrote and print the drift found;
    /// restores what the [reconcile] policies say. Delta (changes since the last run) unless
    /// --full. Exit 0 whatever it finds, 1 when the run fails.
    #[command(
        after_help = "Examples:\n  c4c-scim-bridge reconcile --dry-run\n  c4c-scim-bridge reconcile --full --json"
    )]
    Reconcile {
        /// Read every employee (the only way to find linked employees gone from C4C).
        #[arg(long)]
        full: bool,
        /// Find and report; restore nothing and keep the delta watermark.
        #[arg(long)]
        dry_run: bool,
        /// Print the run and its findings as one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Manage OAuth 2.0 clients of the client-credentials token endpoint (POST /oauth/token).
    #[command(subcommand, name = "oauth-client")]
    OAuthClient(security::OAuthClientCommand),
    /// Rotate and list the keys that sign the bridge's JWTs.
    #[command(subcommand, name = "signing-key")]
    SigningKey(security::SigningKeyCommand),
    /// Manage local admin accounts (roles viewer and operator).
    #[command(subcommand)]
    Admin(security::AdminCommand),
    /// Run the C4C OData v2 simulator alone (a local test tenant with fault injection).
    #[command(
        after_help = "Example:\n  c4c-scim-bridge sim --listen 127.0.0.1:8088 --employees 200 --latency-ms 150"
    )]
    Sim(crate::sim::SimArgs),
    /// Print the reference of every configuration key (markdown), generated from the code.
    #[command(
        name = "config-reference",
        after_help = "Example:\n  c4c-scim-bridge config-reference > docs/configuration.md"
    )]
    ConfigReference,
    /// Print the version.
    #[command(after_help = "Example:\n  c4c-scim-bridge version")]
    Version,
}

#[derive(Debug, Subcommand)]
pub enum HeldCommand {
    /// List held operations (by default only those still held).
    #[command(after_help = "Example:\n  c4c-scim-bridge held list --client entra-prod")]
    List {
        #[arg(long)]
        client: Option<String>,
        /// Only this kind.
        #[arg(long, value_parser = HELD_KINDS)]
        kind: Option<String>,
        /// Also those already released, discarded or superseded.
        #[arg(long)]
        all: bool,
    },
    /// Apply held operations to C4C (given ids, or every held one of --client and/or --kind, or
    /// --all).
    #[command(
        after_help = "Examples:\n  c4c-scim-bridge held release 12 13 --by alice\n  c4c-scim-bridge held release --client entra-prod --by alice"
    )]
    Release(HeldSelection),
    /// Drop held operations without applying them.
    #[command(
        after_help = "Example:\n  c4c-scim-bridge held discard --client entra-prod --by alice"
    )]
    Discard(HeldSelection),
}

/// The kinds of held operations, as `held list` shows them.
const HELD_KINDS: [&str; 4] = crate::provisioning::safety::HeldKind::NAMES;

#[derive(Debug, clap::Args)]
pub struct HeldSelection {
    /// Held operation ids.
    pub ids: Vec<i64>,
    /// Every held operation of this identity-provider client.
    #[arg(long)]
    pub client: Option<String>,
    /// Every held operation of this kind (with --client: of that client).
    #[arg(long, value_parser = HELD_KINDS)]
    pub kind: Option<String>,
    /// Every held operation.
    #[arg(long)]
    pub all: bool,
    /// Who decides, for the mapping log (default: $USER).
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
}

/// Where the tenant's `$metadata` comes from, for rule checks.
#[derive(Debug, clap::Args)]
pub struct MetadataSource {
    /// A saved `$metadata` document (EDMX XML).
    #[arg(long, value_name = "FILE", conflicts_with = "tenant")]
    pub metadata: Option<PathBuf>,
    /// Fetch `$metadata` from the tenant configured in [c4c].
    #[arg(long)]
    pub tenant: bool,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token; it is printed once and only its hash is stored.
    #[command(
        after_help = "Example:\n  c4c-scim-bridge token create --name entra-prod --expires 365d"
    )]
    Create {
        /// A name saying which client uses it, e.g. entra-prod.
        #[arg(long)]
        name: String,
        /// Lifetime, e.g. 365d or 12h; without it the token lives until revoked.
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
    },
    /// List tokens (never their values).
    #[command(after_help = "Example:\n  c4c-scim-bridge token list")]
    List,
    /// Revoke a token by id or name; clients using it get 401 at once.
    #[command(after_help = "Example:\n  c4c-scim-bridge token revoke entra-prod")]
    Revoke {
        /// The token's id or name.
        id_or_name: String,
    },
}

/// Runs a parsed command line and returns the process exit code.
pub async fn run(cli: Cli) -> u8 {
    let result = dispatch(cli).await;
    // The OTLP exporter flushes with a blocking HTTP client: off the async workers.
    let _ = tokio::task::spawn_blocking(crate::telemetry::shutdown).await;
    match result {
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
        Command::ConfigReference => {
            print!("{}", crate::config_reference::markdown());
            Ok(())
        }
        Command::Health { url } => probe_health(&url).await,
        Command::Sim(args) => {
            // Only the log settings matter here; a bad file is still an error.
            load_config(cli.config.as_ref())?;
            crate::sim::run_cli(args)
                .await
                .map_err(|error| AppError::Serve(format!("{error:#}")))
        }
        Command::Token(command) => {
            let config = load_config(cli.config.as_ref())?;
            let store = open_store(&config, true).await?;
            let result = run_token_command(&store, command).await;
            store.close().await;
            result
        }
        Command::Held(command) => {
            let config = load_config(cli.config.as_ref())?;
            let store = open_store(&config, true).await?;
            let result = run_held_command(&config, &store, command).await;
            store.close().await;
            result
        }
        Command::Undo {
            since,
            until,
            client,
            dry_run,
            by,
        } => {
            let config = load_config(cli.config.as_ref())?;
            let store = open_store(&config, true).await?;
            let result = run_undo(
                &config,
                &store,
                &since,
                until.as_deref(),
                client.as_deref(),
                dry_run,
                &operator(by),
            )
            .await;
            store.close().await;
            result
        }
        Command::Reconcile {
            full,
            dry_run,
            json,
        } => {
            let config = load_config(cli.config.as_ref())?;
            let store = open_store(&config, true).await?;
            let result = run_reconcile(&config, &store, full, dry_run, json).await;
            store.close().await;
            result
        }
        Command::OAuthClient(command) => {
            let config = load_config(cli.config.as_ref())?;
            let store = open_store(&config, true).await?;
            let result = security::oauth_client(&store, command).await;
            store.close().await;
            result
        }
        Command::SigningKey(command) => {
            let config = load_config(cli.config.as_ref())?;
            let store = open_store(&config, true).await?;
            let result = security::signing_key(&store, &config, command).await;
            store.close().await;
            result
        }
        Command::Admin(command) => {
            let config = load_config(cli.config.as_ref())?;
            let store = open_store(&config, true).await?;
            let result = security::admin_account(&store, command).await;
            store.close().await;
            result
        }
        Command::Check { metadata } => {
            let config = load_config(cli.config.as_ref())?;
            let url = config.store.resolved_url()?;
            let source = cli
                .config
                .as_ref()
                .map(|path| path.display().to_string())
                .unwrap_or_else(|| "defaults and environment".to_owned());
            let mapping = config.resolved_mapping()?;
            if let Some(metadata) = load_metadata(&config, &metadata).await? {
                let problems = crate::mapping::validate(&mapping, &metadata);
                for problem in &problems {
                    eprintln!("{problem}");
                }
                let errors = problems
                    .iter()
                    .filter(|problem| problem.severity == crate::mapping::Severity::Error)
                    .count();
                if errors > 0 {
                    return Err(AppError::Config(crate::config::ConfigError::Invalid(
                        format!(
                            "{errors} mapping rule(s) do not fit the tenant's $metadata (listed above)"
                        ),
                    )));
                }
                println!(
                    "mapping rules fit the tenant's $metadata ({} rules)",
                    mapping.rules.len()
                );
            }
            println!("configuration OK ({source})");
            println!("  listen:  {}", config.server.listen);
            println!("  scim:    {}", config.server.base_path);
            println!("  store:   {}", redact_url(url.expose_secret()));
            if let Some(c4c) = &config.c4c {
                println!("  c4c:     {}", c4c.base_url);
            }
            Ok(())
        }
        Command::Map { metadata } => {
            let config = load_config(cli.config.as_ref())?;
            let mapping = config.resolved_mapping()?;
            let metadata = load_metadata(&config, &metadata).await?;
            let mut input = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut input)
                .map_err(|error| AppError::Usage(format!("cannot read standard input: {error}")))?;
            let user: serde_json::Value = serde_json::from_str(&input).map_err(|error| {
                AppError::Usage(format!("standard input is not a JSON SCIM user: {error}"))
            })?;
            let mapper =
                crate::mapping::Mapper::new(mapping, metadata.as_deref()).map_err(|problems| {
                    AppError::Config(crate::config::ConfigError::Invalid(format!(
                        "mapping: {}",
                        problems
                            .first()
                            .map(ToString::to_string)
                            .unwrap_or_default()
                    )))
                })?;
            let report = crate::mapping::dry_run(&mapper, &user);
            print!("{report}");
            if report.is_ok() {
                Ok(())
            } else {
                Err(AppError::Serve(
                    "the user would be refused (see above)".to_owned(),
                ))
            }
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
            app.check_rules_against_tenant().await?;
            tracing::info!(addr = %app.local_addr()?, "serving");
            app.run_until(shutdown_signal()).await
        }
        Command::Demo {
            listen,
            sim_latency_ms,
        } => {
            let mut config = load_config(cli.config.as_ref())?;
            let store = open_store(&config, config.store.migrate_on_start).await?;
            let simulator = crate::sim::Simulator::start(crate::sim::SimConfig {
                listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
                generated_employees: 50,
                faults: crate::sim::FaultSettings {
                    latency_ms: sim_latency_ms,
                    ..crate::sim::FaultSettings::default()
                },
                ..crate::sim::SimConfig::default()
            })
            .await
            .map_err(|error| AppError::Serve(format!("cannot start the C4C simulator: {error}")))?;
            // One demo token at a time: the previous run's is revoked.
            store
                .revoke_token("demo", crate::store::now_millis())
                .await?;
            let token = crate::auth::create_token(&store, "demo", None)
                .await
                .map_err(|error| AppError::Serve(error.to_string()))?;
            let admin_password = demo_admin(&store).await?;
            // The demo serves plain HTTP: a Secure cookie would not come back from every browser.
            config.auth.admin.cookie_secure = false;
            let listener = bind_demo_listener(listen).await?;
            config.server.listen = listener
                .local_addr()
                .map_err(|error| AppError::Serve(error.to_string()))?;
            let base_path = config.server.base_path.clone();
            config.c4c = Some(demo_c4c_config(&simulator.service_url())?);
            let app = Application::from_listener(listener, config, store).with_c4c_from_config()?;
            app.check_rules_against_tenant().await?;
            let addr = app.local_addr()?;
            let token = token.token.expose_secret().to_owned();
            println!("c4c-scim-bridge demo listening on http://{addr}");
            println!("  SCIM base URL:  http://{addr}{base_path}");
            println!("  Bearer token:   {token}");
            println!(
                "  C4C simulator:  {}/ ({} employees; Basic {} / {})",
                simulator.service_url(),
                simulator.count("EmployeeCollection").unwrap_or(0),
                crate::sim::DEFAULT_USER,
                crate::sim::DEFAULT_PASSWORD,
            );
            println!(
                "  Admin UI:       http://{addr}/admin (user admin, password {admin_password})"
            );
            println!("Try:");
            println!("  curl http://{addr}/healthz");
            println!(
                "  curl -H 'Authorization: Bearer {token}' http://{addr}{base_path}/ServiceProviderConfig"
            );
            println!(
                "  curl -H 'Authorization: Bearer {token}' -H 'Content-Type: application/scim+json' \\\n    -d '{{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"userName\":\"ada@example.com\",\"name\":{{\"givenName\":\"Ada\",\"familyName\":\"Lovelace\"}},\"emails\":[{{\"type\":\"work\",\"value\":\"ada@example.com\",\"primary\":true}}]}}' \\\n    http://{addr}{base_path}/Users"
            );
            println!(
                "  curl -u {}:'{}' '{}/EmployeeCollection?$top=3&$format=json'",
                crate::sim::DEFAULT_USER,
                crate::sim::DEFAULT_PASSWORD,
                simulator.service_url(),
            );
            println!("Press Ctrl-C to stop.");
            // Some history for the admin UI: provisionings through the SCIM API, one of them
            // failed by a simulated C4C outage (retry it from the UI).
            let history = tokio::spawn(demo_history(
                format!("http://{addr}{base_path}"),
                token.clone(),
                simulator.faults(),
            ));
            let result = app.run_until(shutdown_signal()).await;
            history.abort();
            simulator.shutdown().await;
            result
        }
    }
}

/// `$metadata` from a file or from the configured tenant; `None` when neither was asked for.
async fn load_metadata(
    config: &Config,
    source: &MetadataSource,
) -> Result<Option<std::sync::Arc<crate::c4c::Metadata>>, AppError> {
    if let Some(path) = &source.metadata {
        let bytes = std::fs::read(path).map_err(|error| {
            AppError::Usage(format!(
                "cannot read --metadata {}: {error}",
                path.display()
            ))
        })?;
        let metadata = crate::c4c::Metadata::parse(&bytes)
            .map_err(|error| AppError::Usage(format!("--metadata {}: {error}", path.display())))?;
        return Ok(Some(std::sync::Arc::new(metadata)));
    }
    if !source.tenant {
        return Ok(None);
    }
    let c4c = config.c4c.clone().ok_or_else(|| {
        AppError::Usage("--tenant needs a [c4c] section in the configuration".to_owned())
    })?;
    let client = crate::c4c::C4cClient::new(c4c)
        .map_err(|error| AppError::Usage(format!("c4c: {error}")))?;
    let metadata = client
        .metadata()
        .await
        .map_err(|error| AppError::Serve(format!("cannot read the tenant's $metadata: {error}")))?;
    Ok(Some(metadata))
}

/// The demo's admin account (operator) with a fresh random password each run.
async fn demo_admin(store: &crate::store::Store) -> Result<String, AppError> {
    use crate::auth::admin::{Role, add_user, set_password};
    use rand::Rng;
    let password: String = rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(20)
        .map(char::from)
        .collect();
    let secret = secrecy::SecretString::from(password.clone());
    match add_user(store, "admin", Role::Operator, &secret).await {
        Ok(()) => Ok(password),
        Err(crate::auth::AuthError::NameTaken(_)) => set_password(store, "admin", &secret)
            .await
            .map(|()| password)
            .map_err(|error| AppError::Serve(error.to_string())),
        Err(error) => Err(AppError::Serve(error.to_string())),
    }
}

/// Sends the demo's first SCIM requests: three users created (one updated), and one create
/// failed by a C4C outage. Errors are ignored: the history is a convenience.
async fn demo_history(scim_base: String, token: String, faults: crate::sim::FaultControl) {
    let client = reqwest::Client::new();
    let user = |name: &str, given: &str, number: u32| {
        serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "userName": format!("{name}@example.com"),
            "externalId": name,
            "active": true,
            "name": {"givenName": given, "familyName": "Demo"},
            "emails": [{"type": "work", "value": format!("{name}@example.com"), "primary": true}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
                {"employeeNumber": format!("D{number}")}
        })
    };
    let post = |body: serde_json::Value| {
        client
            .post(format!("{scim_base}/Users"))
            .bearer_auth(&token)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
    };
    let mut first = None;
    for (name, given, number) in [
        ("grace", "Grace", 1),
        ("linus", "Linus", 2),
        ("margaret", "Margaret", 3),
    ] {
        if let Ok(response) = post(user(name, given, number)).await
            && let Ok(created) = response.json::<serde_json::Value>().await
            && first.is_none()
        {
            first = created["id"].as_str().map(str::to_owned);
        }
    }
    if let Some(id) = first {
        let _ = client
            .patch(format!("{scim_base}/Users/{id}"))
            .bearer_auth(&token)
            .header("content-type", "application/scim+json")
            .body(
                serde_json::json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "title", "value": "Engineer"}]
                })
                .to_string(),
            )
            .send()
            .await;
    }
    faults.fail_next(
        20,
        crate::sim::Fault::Status503,
        crate::sim::FaultScope::Any,
    );
    let _ = post(user("barbara", "Barbara", 4)).await;
    faults.clear();
}

/// The demo's tenant: the built-in simulator, with its technical user.
fn demo_c4c_config(service_url: &str) -> Result<crate::c4c::C4cConfig, AppError> {
    let text = format!(
        "base_url = \"{service_url}/\"\n[auth]\nmode = \"basic\"\nuser = \"{}\"\npassword = \"{}\"\n",
        crate::sim::DEFAULT_USER,
        crate::sim::DEFAULT_PASSWORD,
    );
    toml::from_str(&text).map_err(|error| AppError::Serve(format!("demo C4C settings: {error}")))
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

async fn run_token_command(
    store: &crate::store::Store,
    command: TokenCommand,
) -> Result<(), AppError> {
    use crate::auth::{AuthError, create_token, parse_validity};
    let auth_error = |error: AuthError| match error {
        AuthError::Store(error) => AppError::Store(error),
        other => AppError::Usage(other.to_string()),
    };
    match command {
        TokenCommand::Create { name, expires } => {
            let valid_for = expires
                .as_deref()
                .map(parse_validity)
                .transpose()
                .map_err(auth_error)?;
            let issued = create_token(store, &name, valid_for)
                .await
                .map_err(auth_error)?;
            println!("{}", issued.token.expose_secret());
            eprintln!(
                "token {:?} (id {}) created{}; it is shown only now: store it in the identity provider",
                issued.row.name,
                issued.row.id,
                issued
                    .row
                    .expires_at
                    .map(|at| format!(", expires {}", format_millis(at)))
                    .unwrap_or_default()
            );
            Ok(())
        }
        TokenCommand::List => {
            let tokens = store.list_tokens().await?;
            println!(
                "{:<16}  {:<24}  {:<20}  {:<20}  {:<20}  status",
                "id", "name", "created", "expires", "last used"
            );
            let now = crate::store::now_millis();
            for token in tokens {
                let status = if token.revoked_at.is_some() {
                    "revoked"
                } else if token.expires_at.is_some_and(|at| at <= now) {
                    "expired"
                } else {
                    "active"
                };
                println!(
                    "{:<16}  {:<24}  {:<20}  {:<20}  {:<20}  {status}",
                    token.id,
                    token.name,
                    format_millis(token.created_at),
                    token
                        .expires_at
                        .map(format_millis)
                        .unwrap_or_else(|| "never".to_owned()),
                    token
                        .last_used_at
                        .map(format_millis)
                        .unwrap_or_else(|| "never".to_owned()),
                );
            }
            Ok(())
        }
        TokenCommand::Revoke { id_or_name } => {
            let revoked = store
                .revoke_token(&id_or_name, crate::store::now_millis())
                .await?;
            if revoked == 0 {
                return Err(AppError::Usage(format!(
                    "no live token with id or name {id_or_name:?}; see `c4c-scim-bridge token list`"
                )));
            }
            println!("revoked {revoked} token(s) named or numbered {id_or_name:?}");
            Ok(())
        }
    }
}

fn format_millis(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .map(|at| at.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| millis.to_string())
}

/// The operator named by --by, else the login name.
fn operator(by: Option<String>) -> String {
    by.or_else(|| std::env::var("USER").ok())
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| "operator".to_owned())
}

/// The safety service for operator commands: the store, the C4C tenant and the mapping rules.
fn safety_service(
    config: &Config,
    store: &crate::store::Store,
) -> Result<crate::provisioning::safety::Safety, AppError> {
    let (client, mapper) = tenant_and_mapper(config)?;
    Ok(crate::provisioning::safety::Safety::new(
        store.clone(),
        client,
        std::sync::Arc::new(mapper),
        config.safety.clone(),
    ))
}

async fn run_held_command(
    config: &Config,
    store: &crate::store::Store,
    command: HeldCommand,
) -> Result<(), AppError> {
    let (selection, release) = match command {
        HeldCommand::List { client, kind, all } => {
            let status = if all { None } else { Some("held") };
            let mut held = store.list_held(status, client.as_deref()).await?;
            held.retain(|operation| kind.as_ref().is_none_or(|kind| operation.kind == *kind));
            println!(
                "{:<6}  {:<16}  {:<14}  {:<36}  {:<20}  {:<10}  decided by",
                "id", "client", "kind", "user", "requested", "status"
            );
            for operation in &held {
                println!(
                    "{:<6}  {:<16}  {:<14}  {:<36}  {:<20}  {:<10}  {}",
                    operation.id,
                    operation.client.as_deref().unwrap_or("-"),
                    operation.kind,
                    operation.resource_id,
                    format_millis(operation.requested_at),
                    operation.status,
                    operation.decided_by.as_deref().unwrap_or("-"),
                );
            }
            eprintln!("{} operation(s)", held.len());
            return Ok(());
        }
        HeldCommand::Release(selection) => (selection, true),
        HeldCommand::Discard(selection) => (selection, false),
    };
    if selection.ids.is_empty()
        && selection.client.is_none()
        && selection.kind.is_none()
        && !selection.all
    {
        return Err(AppError::Usage(
            "name held operation ids, --client NAME, --kind KIND, or --all; \
             see `c4c-scim-bridge held list`"
                .to_owned(),
        ));
    }
    let filter = crate::provisioning::safety::HeldFilter {
        ids: &selection.ids,
        client: selection.client.as_deref(),
        kind: selection.kind.as_deref(),
    };
    let by = operator(selection.by);
    let safety = safety_service(config, store)?;
    let outcomes = if release {
        safety.release(filter, &by).await?
    } else {
        safety.discard(filter, &by).await?
    };
    if outcomes.is_empty()
        && let Some(kind) = &selection.kind
    {
        eprintln!("no held operation of kind {kind}");
    }
    print_outcomes(&outcomes)
}

async fn run_undo(
    config: &Config,
    store: &crate::store::Store,
    since: &str,
    until: Option<&str>,
    client: Option<&str>,
    dry_run: bool,
    by: &str,
) -> Result<(), AppError> {
    let now = crate::store::now_millis();
    let since = parse_time(since, now, "--since")?;
    let until = until
        .map(|text| parse_time(text, now, "--until"))
        .transpose()?
        .unwrap_or(now.saturating_add(1));
    let safety = safety_service(config, store)?;
    let outcomes = safety.undo(since, until, client, dry_run, by).await?;
    if dry_run {
        eprintln!("dry run: nothing was changed");
    }
    print_outcomes(&outcomes)
}

/// The C4C client and the mapping rules an operator command works with.
fn tenant_and_mapper(
    config: &Config,
) -> Result<(crate::c4c::C4cClient, crate::mapping::Mapper), AppError> {
    let c4c = config.c4c.clone().ok_or_else(|| {
        AppError::Usage("this command needs a [c4c] section in the configuration".to_owned())
    })?;
    let client = crate::c4c::C4cClient::new(c4c).map_err(|error| {
        AppError::Config(crate::config::ConfigError::Invalid(error.to_string()))
    })?;
    let mapper =
        crate::mapping::Mapper::new(config.resolved_mapping()?, None).map_err(|problems| {
            AppError::Config(crate::config::ConfigError::Invalid(format!(
                "mapping: {}",
                problems
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            )))
        })?;
    Ok((client, mapper))
}

async fn run_reconcile(
    config: &Config,
    store: &crate::store::Store,
    full: bool,
    dry_run: bool,
    json: bool,
) -> Result<(), AppError> {
    use crate::provisioning::reconcile::{Reconciler, RunOptions};
    let (client, mapper) = tenant_and_mapper(config)?;
    let reconciler = Reconciler::new(
        store.clone(),
        client,
        std::sync::Arc::new(mapper),
        config.reconcile.clone(),
    )
    .with_safety(config.safety.clone());
    let report = reconciler
        .run(RunOptions {
            full,
            dry_run,
            trigger: "cli",
        })
        .await
        .map_err(|error| AppError::Serve(format!("reconciliation failed: {error}")))?;
    let summary = &report.summary;
    if json {
        // Streamed: a large drift is printed page by page, never held whole.
        print!(
            "{{\"run_id\":{},\"summary\":{},\"findings\":[",
            report.run_id,
            serde_json::to_string(summary).unwrap_or_default()
        );
    } else {
        println!(
            "run {}: {} {}read {} employee(s), compared {} linked, {} finding(s), {} restored, {} restore(s) failed, {} held by the circuit breaker",
            report.run_id,
            summary.mode,
            if dry_run { "dry run, " } else { "" },
            summary.employees_read,
            summary.linked_compared,
            summary.findings.values().sum::<u64>(),
            summary.restored,
            summary.restore_failed,
            summary.held,
        );
        println!(
            "{:<15}  {:<15}  {:<36}  {:<32}  {:<22}  {:<24}  expected",
            "kind", "action", "user", "object id", "field", "in C4C"
        );
    }
    let mut after = 0;
    let mut first = true;
    loop {
        let page = store.reconcile_findings(report.run_id, after, 1000).await?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.id;
        for row in &page {
            let finding = &row.finding;
            if json {
                print!(
                    "{}{}",
                    if first { "" } else { "," },
                    serde_json::to_string(row).unwrap_or_default()
                );
                first = false;
                continue;
            }
            let show = |value: &Option<serde_json::Value>| match value {
                Some(serde_json::Value::String(text)) => text.clone(),
                Some(value) => value.to_string(),
                None => "-".to_owned(),
            };
            println!(
                "{:<15}  {:<15}  {:<36}  {:<32}  {:<22}  {:<24}  {}",
                finding.kind,
                finding.action,
                finding.resource_id.as_deref().unwrap_or("-"),
                finding.object_id.as_deref().unwrap_or("-"),
                finding.field.as_deref().unwrap_or("-"),
                show(&finding.c4c_value),
                show(&finding.expected_value),
            );
        }
    }
    if json {
        println!("]}}");
    } else if dry_run {
        eprintln!("dry run: nothing was changed in C4C");
    }
    Ok(())
}

/// One line per item; exit 1 when any failed.
fn print_outcomes(outcomes: &[crate::provisioning::safety::Outcome]) -> Result<(), AppError> {
    for outcome in outcomes {
        println!(
            "{:<12}  {:<14}  {:<36}  {}",
            outcome.id,
            outcome.result,
            outcome.object_id.as_deref().unwrap_or("-"),
            outcome.detail.as_deref().unwrap_or("")
        );
    }
    let failed = outcomes.iter().filter(|o| o.result == "failed").count();
    eprintln!("{} item(s), {failed} failed", outcomes.len());
    if failed > 0 {
        return Err(AppError::Serve(format!(
            "{failed} item(s) failed; run the command again once C4C answers"
        )));
    }
    Ok(())
}

/// An RFC 3339 time, or a duration ago (`2h`, `30m`), as Unix milliseconds.
fn parse_time(text: &str, now: i64, flag: &str) -> Result<i64, AppError> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(at.timestamp_millis());
    }
    match humantime::parse_duration(text) {
        Ok(ago) => Ok(now.saturating_sub(i64::try_from(ago.as_millis()).unwrap_or(i64::MAX))),
        Err(_) => Err(AppError::Usage(format!(
            "{flag} {text:?}: an RFC 3339 time (2026-11-23T08:00:00Z) or a duration ago (2h)"
        ))),
    }
}
