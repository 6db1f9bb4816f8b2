//! The binary as an operator runs it: exit codes, one-line errors, migrate, check, demo.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{Backend, TestDb, binary};

fn run(args: &[&str], envs: &[(&str, &str)]) -> (i32, String, String) {
    let output = Command::new(binary())
        .args(args)
        .envs(envs.iter().copied())
        .env("C4C_SCIM_BRIDGE__LOG__LEVEL", "warn")
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn version_and_help() {
    let (code, out, _) = run(&["version"], &[]);
    assert_eq!(code, 0);
    assert!(out.starts_with("c4c-scim-bridge "));
    for command in [
        "serve",
        "migrate",
        "check",
        "map",
        "demo",
        "version",
        "health",
        "token create",
        "token list",
        "token revoke",
        "held list",
        "held release",
        "held discard",
        "undo",
    ] {
        let mut args: Vec<&str> = command.split(' ').collect();
        args.push("--help");
        let (code, out, _) = run(&args, &[]);
        assert_eq!(code, 0, "{command}");
        assert!(out.contains("Example"), "{command} --help shows an example");
    }
}

#[test]
fn usage_error_exits_2() {
    let (code, _, err) = run(&["serve", "--listen", "nonsense"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("--listen"), "{err}");
    let (code, _, _) = run(&["no-such-command"], &[]);
    assert_eq!(code, 2);
}

#[test]
fn config_errors_exit_2_with_one_line_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let unknown = dir.path().join("unknown.toml");
    std::fs::write(
        &unknown,
        "[server]\nlisten = \"127.0.0.1:1\"\nbase_pth = \"/x\"\n",
    )
    .unwrap();
    let (code, _, err) = run(&["check", "--config", unknown.to_str().unwrap()], &[]);
    assert_eq!(code, 2);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("base_pth") && err.contains("unknown.toml"),
        "{err}"
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[store]\nmax_connections = \"many\"\n").unwrap();
    let (code, _, err) = run(&["check", "--config", bad.to_str().unwrap()], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("max_connections"), "{err}");

    let (code, _, err) = run(
        &["check"],
        &[("C4C_SCIM_BRIDGE__SERVER__BASE_PATH", "scim")],
    );
    assert_eq!(code, 2);
    assert!(err.contains("server.base_path"), "{err}");

    let (code, _, err) = run(&["check", "--config", "/nonexistent/c.toml"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/c.toml"), "{err}");
}

#[test]
fn c4c_section_is_validated_with_its_secret_files() {
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("pw");
    std::fs::write(&password, "s3cret-Pa55\n").unwrap();
    let section = |auth_extra: &str| {
        format!(
            "[c4c]\nbase_url = \"https://my000000.crm.ondemand.com/sap/c4c/odata/v1/c4codataapi/\"\n\
             [c4c.auth]\nmode = \"basic\"\nuser = \"_TECH\"\n{auth_extra}\n"
        )
    };
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        section(&format!("password_file = \"{}\"", password.display())),
    )
    .unwrap();
    let (code, out, err) = run(&["check", "--config", good.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("s3cret") && !err.contains("s3cret"));

    let missing = dir.path().join("missing.toml");
    std::fs::write(&missing, section("password_file = \"/nonexistent/pw\"")).unwrap();
    let (code, _, err) = run(&["check", "--config", missing.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("password"), "{err}");

    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, section("pasword = \"x\"")).unwrap();
    let (code, _, err) = run(&["check", "--config", typo.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("pasword") && err.contains("typo.toml"),
        "{err}"
    );
}

#[test]
fn example_config_is_valid_and_secrets_stay_out_of_check() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/config.example.toml");
    let (code, out, err) = run(&["check", "--config", example], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("configuration OK"));
    let (code, out, _) = run(
        &["check"],
        &[(
            "C4C_SCIM_BRIDGE__STORE__URL",
            "postgres://bridge:hunter2@db.internal/bridge",
        )],
    );
    assert_eq!(code, 0);
    assert!(
        out.contains("db.internal") && !out.contains("hunter2"),
        "{out}"
    );
}

async fn migrate_twice(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let envs = [("C4C_SCIM_BRIDGE__STORE__URL", db.url.as_str())];
    let (code, out, err) = run(&["migrate"], &envs);
    assert_eq!(code, 0, "{err}");
    let applied: usize = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(applied >= 1, "{out}");
    let (code, out, err) = run(&["migrate"], &envs);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("0 applied"), "{out}");
}

#[tokio::test]
async fn migrate_is_idempotent_on_sqlite() {
    migrate_twice(Backend::Sqlite).await;
}

#[tokio::test]
async fn migrate_is_idempotent_on_postgres() {
    migrate_twice(Backend::Postgres).await;
}

#[tokio::test]
async fn migrate_on_an_unreachable_store_exits_1() {
    let (code, _, err) = run(
        &["migrate"],
        &[(
            "C4C_SCIM_BRIDGE__STORE__URL",
            "postgres://postgres@127.0.0.1:1/none",
        )],
    );
    assert_eq!(code, 1);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[tokio::test]
async fn demo_serves_health_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(binary())
        .args(["demo", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("C4C_SCIM_BRIDGE__LOG__LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first.rsplit(' ').next().unwrap().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{first}");
    let response = reqwest::get(format!("{url}/healthz")).await.unwrap();
    assert_eq!(response.status(), 200);
    // The printed token and simulator work as printed.
    let printed: Vec<String> = lines.by_ref().take(3).map(Result::unwrap).collect();
    let scim_base = printed[0].rsplit(' ').next().unwrap().to_owned();
    let token = printed[1].rsplit(' ').next().unwrap().to_owned();
    let config = reqwest::Client::new()
        .get(format!("{scim_base}/ServiceProviderConfig"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(config.status(), 200);
    let sim_url = printed[2].split_whitespace().nth(2).unwrap().to_owned();
    let employees = reqwest::Client::new()
        .get(format!("{sim_url}EmployeeCollection/$count"))
        .basic_auth("SCIM_TECH_USER", Some("Welcome1!Sim"))
        .send()
        .await
        .unwrap();
    // 50 generated, and the users of the demo's history once it has run.
    let count: usize = employees.text().await.unwrap().parse().unwrap();
    assert!((50..=53).contains(&count), "{count}");
    // The demo's embedded store is a file under ./data/.
    assert!(dir.path().join("data").is_dir());
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut status = None;
    for _ in 0..100 {
        if let Some(exit) = child.try_wait().unwrap() {
            status = Some(exit);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = status.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("demo did not stop on SIGTERM");
    });
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn sim_subcommand_serves_its_employees() {
    let mut child = Command::new(binary())
        .args(["sim", "--listen", "127.0.0.1:0", "--employees", "7"])
        .env("C4C_SCIM_BRIDGE__LOG__LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines: Vec<String> = BufReader::new(stdout)
        .lines()
        .take(3)
        .map(Result::unwrap)
        .collect();
    let service = lines
        .iter()
        .find_map(|line| line.strip_prefix("Service URL:"))
        .unwrap()
        .trim()
        .to_owned();
    let count = reqwest::Client::new()
        .get(format!("{service}EmployeeCollection/$count"))
        .basic_auth("SCIM_TECH_USER", Some("Welcome1!Sim"))
        .send()
        .await
        .unwrap();
    assert_eq!(count.text().await.unwrap(), "7");
    child.kill().unwrap();
    child.wait().unwrap();
}
