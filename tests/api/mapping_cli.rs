//! `check` and `map` with the mapping rules, against the simulator's `$metadata`.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::harness::{binary, start_sim};

fn run(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(binary())
        .args(args)
        .env("C4C_SCIM_BRIDGE__LOG__LEVEL", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

// Multi-threaded: the simulator must keep serving while this thread waits for the binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_validates_rules_against_the_tenant_metadata() {
    let sim = start_sim(1).await;
    let metadata = reqwest::Client::new()
        .get(format!("{}/$metadata", sim.service_url()))
        .basic_auth("SCIM_TECH_USER", Some("Welcome1!Sim"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let metadata_file = dir.path().join("metadata.xml");
    std::fs::write(&metadata_file, metadata).unwrap();
    let metadata_arg = metadata_file.to_str().unwrap();

    // The default rules fit, from a saved document and from the tenant itself.
    let (code, out, err) = run(&["check", "--metadata", metadata_arg], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("mapping rules fit"), "{out}");
    let tenant_config = dir.path().join("tenant.toml");
    std::fs::write(
        &tenant_config,
        format!(
            "[c4c]\nbase_url = \"{}/\"\n[c4c.auth]\nmode = \"basic\"\nuser = \"SCIM_TECH_USER\"\npassword = \"Welcome1!Sim\"\n",
            sim.service_url()
        ),
    )
    .unwrap();
    let (code, out, err) = run(
        &[
            "check",
            "--config",
            tenant_config.to_str().unwrap(),
            "--tenant",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("mapping rules fit"), "{out}");

    // A misspelt property is named, with a suggestion, and the exit code is 2.
    let misspelt = dir.path().join("misspelt.toml");
    std::fs::write(
        &misspelt,
        "[[mapping.rules]]\nname = \"work_email\"\nscim = 'emails[type eq \"work\"].value'\nto = \"Emial\"\n",
    )
    .unwrap();
    let (code, _, err) = run(
        &[
            "check",
            "--config",
            misspelt.to_str().unwrap(),
            "--metadata",
            metadata_arg,
        ],
        None,
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("work_email") && err.contains("Emial") && err.contains("did you mean Email"),
        "{err}"
    );

    // `map` prints the payload and the trace of an Entra-style user.
    let user = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName":"ada@example.com","active":true,
        "name":{"givenName":"Ada","familyName":"Lovelace"},
        "emails":[{"type":"work","value":"Ada@Example.com","primary":true}]}"#;
    let (code, out, err) = run(&["map", "--metadata", metadata_arg], Some(user));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Lovelace") && out.contains("FirstName"),
        "{out}"
    );
    let (code, _, err) = run(&["map"], Some("not json"));
    assert_eq!(code, 2, "{err}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_to_start_with_a_rule_the_tenant_cannot_take() {
    let sim = start_sim(1).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[store]\nurl = \"sqlite://{}/b.db\"\n\
             [c4c]\nbase_url = \"{}/\"\n[c4c.auth]\nmode = \"basic\"\nuser = \"SCIM_TECH_USER\"\npassword = \"Welcome1!Sim\"\n\
             [[mapping.rules]]\nname = \"mobile\"\nscim = 'phoneNumbers[type eq \"mobile\"].value'\nto = \"MobilePhoneNumbr\"\n",
            dir.path().display(),
            sim.service_url()
        ),
    )
    .unwrap();
    let (code, _, err) = run(&["serve", "--config", config.to_str().unwrap()], None);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("MobilePhoneNumbr") && err.contains("MobilePhoneNumber"),
        "{err}"
    );
    sim.shutdown().await;
}
