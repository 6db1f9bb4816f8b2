//! Runs tests/pyodata_check.py (SAP's pyodata, unchanged) against a simulator. Skipped when
//! python3 cannot import pyodata, except under CI=true, where that is a failure.

use c4c_scim_bridge::sim::{DEFAULT_PASSWORD, DEFAULT_USER, SimConfig, Simulator};
use tokio::process::Command;

async fn pyodata_available() -> bool {
    Command::new("python3")
        .args(["-c", "import pyodata, requests"])
        .output()
        .await
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn sap_pyodata_agrees_with_the_simulator() {
    if !pyodata_available().await {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "CI=true but python3 cannot `import pyodata, requests`: pip install pyodata requests"
            );
        }
        eprintln!("skipping: python3 with pyodata is not installed (pip install pyodata requests)");
        return;
    }
    let sim = Simulator::start(SimConfig {
        generated_employees: 1200,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pyodata_check.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(format!("{}/", sim.service_url()))
        .arg(DEFAULT_USER)
        .arg(DEFAULT_PASSWORD)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pyodata check failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("pyodata OK"), "{stdout}");
    let c = sim.counters();
    assert_eq!(c.metadata, 1);
    assert!(c.posts >= 1 && c.patches >= 1);
    sim.shutdown().await;
}
