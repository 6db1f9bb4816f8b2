//! `c4c-scim-bridge sim …`: runs the simulator standalone until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::config::{DEFAULT_PASSWORD, DEFAULT_USER, SimConfig, TechnicalUser, TopPolicy};
use super::seed::load_seed_file;
use super::{SimHandle, Simulator};

#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8088")]
    pub listen: SocketAddr,
    /// Technical user accepted with Basic auth.
    #[arg(long, default_value = DEFAULT_USER)]
    pub user: String,
    /// Password of the technical user.
    #[arg(long, env = "C4C_SIM_PASSWORD", default_value = DEFAULT_PASSWORD, hide_env_values = true)]
    pub password: String,
    /// Seed employees from a JSON (array, or {"d":{"results":[…]}}) or CSV file.
    #[arg(long, conflicts_with = "employees")]
    pub seed: Option<PathBuf>,
    /// Generate this many realistic employees (ignored with --seed).
    #[arg(long, default_value_t = 50)]
    pub employees: usize,
    /// Seed of the employee generator (same seed, same employees).
    #[arg(long, default_value_t = 42)]
    pub generator_seed: u64,
    /// Added latency per request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Random extra latency up to this many milliseconds.
    #[arg(long, default_value_t = 0)]
    pub jitter_ms: u64,
    /// What an explicit $top above the page size does.
    #[arg(long, value_enum, default_value_t = TopPolicy::CapAndPage)]
    pub top_policy: TopPolicy,
    /// Accept `ne` in $filter (C4C does not document it).
    #[arg(long)]
    pub allow_ne: bool,
    /// Do not require CSRF tokens for Basic-authenticated writes.
    #[arg(long)]
    pub no_csrf_for_basic: bool,
    /// CSRF token (session) lifetime in seconds.
    #[arg(long, default_value_t = 1800)]
    pub csrf_lifetime_secs: u64,
}

impl SimArgs {
    pub fn to_config(&self) -> anyhow::Result<SimConfig> {
        let mut config = SimConfig {
            listen: Some(self.listen),
            users: vec![TechnicalUser::new(&self.user, &self.password)],
            top_policy: self.top_policy,
            allow_ne: self.allow_ne,
            csrf_token_lifetime: Duration::from_secs(self.csrf_lifetime_secs),
            generator_seed: self.generator_seed,
            ..SimConfig::default()
        };
        config.csrf.basic = !self.no_csrf_for_basic;
        config.faults.latency_ms = self.latency_ms;
        config.faults.jitter_ms = self.jitter_ms;
        if let Some(oauth) = config.oauth_clients.first_mut() {
            oauth.user = self.user.clone();
        }
        match &self.seed {
            Some(path) => {
                config.seed_employees = load_seed_file(path)
                    .with_context(|| format!("cannot read seed file {}", path.display()))?;
            }
            None => config.generated_employees = self.employees,
        }
        Ok(config)
    }
}

/// What `sim` prints on start (credentials included: it is a local test tenant).
pub fn banner(handle: &SimHandle, args: &SimArgs) -> String {
    let cfg = handle.config();
    let oauth = cfg
        .oauth_clients
        .first()
        .map(|c| {
            format!(
                "OAuth client: {} / {} (token URL {})\n",
                c.client_id,
                secrecy::ExposeSecret::expose_secret(&c.secret),
                handle.token_url()
            )
        })
        .unwrap_or_default();
    format!(
        "C4C simulator listening\nService URL:  {}/\nBasic auth:   {} / {}\n{oauth}Control API:  {}/ (counters, faults, csrf/invalidate, employees)\nEmployees:    {}\n",
        handle.service_url(),
        args.user,
        args.password,
        handle.control_url(),
        handle.count("EmployeeCollection").unwrap_or(0),
    )
}

pub async fn run_cli(args: SimArgs) -> anyhow::Result<()> {
    let config = args.to_config()?;
    let handle = Simulator::start(config)
        .await
        .context("cannot start the simulator")?;
    print!("{}", banner(&handle, &args));
    wait_for_signal().await?;
    handle.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    #[test]
    fn flags_map_to_config() {
        let cli = Cli::parse_from([
            "x",
            "--listen",
            "127.0.0.1:0",
            "--user",
            "TECH",
            "--password",
            "pw",
            "--employees",
            "3",
            "--latency-ms",
            "7",
            "--top-policy",
            "honour",
        ]);
        let cfg = cli.sim.to_config().unwrap();
        assert_eq!(cfg.users[0].name, "TECH");
        assert_eq!(cfg.generated_employees, 3);
        assert_eq!(cfg.faults.latency_ms, 7);
        assert_eq!(cfg.top_policy, TopPolicy::Honour);
        let cli = Cli::parse_from(["x"]);
        assert_eq!(cli.sim.employees, 50);
        assert!(Cli::try_parse_from(["x", "--seed", "a.json", "--employees", "3"]).is_err());
    }

    #[tokio::test]
    async fn seed_files_and_banner() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("seed.csv");
        std::fs::write(
            &csv,
            "EmployeeID,FirstName,LastName,UserID\n10,Siobhán,O'Neill,SIOBHAN\n",
        )
        .unwrap();
        let cli = Cli::parse_from([
            "x",
            "--listen",
            "127.0.0.1:0",
            "--seed",
            csv.to_str().unwrap(),
        ]);
        let handle = Simulator::start(cli.sim.to_config().unwrap())
            .await
            .unwrap();
        assert_eq!(
            handle.employee_by_employee_id("10").unwrap()["LastName"],
            "O'Neill"
        );
        let text = banner(&handle, &cli.sim);
        assert!(text.contains(&handle.service_url()));
        assert!(text.contains("SCIM_TECH_USER / Welcome1!Sim"));
        handle.shutdown().await;
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "[{\"FirstName\":\"only\"}]").unwrap();
        let cli = Cli::parse_from([
            "x",
            "--listen",
            "127.0.0.1:0",
            "--seed",
            bad.to_str().unwrap(),
        ]);
        assert!(
            Simulator::start(cli.sim.to_config().unwrap())
                .await
                .is_err()
        );
        let missing = Cli::parse_from(["x", "--seed", "/nonexistent.json"]);
        assert!(missing.sim.to_config().is_err());
    }
}
