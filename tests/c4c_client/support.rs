//! Shared helpers: a simulator per test, client configs for each auth mode, a counting observer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use c4c_scim_bridge::c4c::{C4cClient, C4cConfig, C4cObserver, CallKind, ErrorKind, Fields};
use c4c_scim_bridge::sim::{DEFAULT_PASSWORD, DEFAULT_USER, SimConfig, SimHandle, Simulator};

pub async fn start(config: SimConfig) -> SimHandle {
    Simulator::start(config).await.expect("simulator starts")
}

/// A config for `handle` with the given `[auth]` table body and extra top-level TOML.
pub fn config(service_url: &str, auth: &str, extra: &str) -> C4cConfig {
    // Fast retries unless the test sets its own.
    let retry = if extra.contains("[retry]") {
        ""
    } else {
        "[retry]\nmax_attempts = 3\nbase_backoff_ms = 5\nmax_backoff_ms = 20\n"
    };
    let text = format!("base_url = {service_url:?}\n{extra}\n{retry}[auth]\n{auth}\n");
    toml::from_str(&text).unwrap_or_else(|e| panic!("bad test config {text}: {e}"))
}

pub fn basic_auth() -> String {
    format!("mode = \"basic\"\nuser = {DEFAULT_USER:?}\npassword = {DEFAULT_PASSWORD:?}")
}

pub fn basic_client(handle: &SimHandle) -> C4cClient {
    C4cClient::new(config(&handle.service_url(), &basic_auth(), "")).unwrap()
}

pub fn basic_client_with(handle: &SimHandle, extra: &str) -> C4cClient {
    C4cClient::new(config(&handle.service_url(), &basic_auth(), extra)).unwrap()
}

/// A valid new employee; `n` makes it unique.
pub fn new_employee(n: u32) -> Fields {
    Fields::new()
        .set("EmployeeID", format!("T{n:06}"))
        .set("FirstName", "Jane")
        .set("LastName", format!("O'Test{n}"))
        .set("Email", format!("jane.test{n}@example.com"))
        .set("UserID", format!("JANE.TEST{n}"))
        .set("LanguageCode", "EN")
        .set("CountryCode", "US")
}

/// One observed call: kind, status, error kind.
pub type Call = (CallKind, Option<u16>, Option<ErrorKind>);

/// Records every call the client reports.
#[derive(Default)]
pub struct Recorder {
    pub calls: Mutex<Vec<Call>>,
}

impl C4cObserver for Recorder {
    fn on_call(&self, kind: CallKind, status: Option<u16>, _: Duration, error: Option<ErrorKind>) {
        self.calls.lock().unwrap().push((kind, status, error));
    }
}

impl Recorder {
    pub fn by_kind(&self) -> HashMap<CallKind, usize> {
        let mut out = HashMap::new();
        for (k, _, _) in self.calls.lock().unwrap().iter() {
            *out.entry(*k).or_default() += 1;
        }
        out
    }
}

pub fn recording_client(handle: &SimHandle, extra: &str) -> (C4cClient, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let client = C4cClient::with_observer(
        config(&handle.service_url(), &basic_auth(), extra),
        recorder.clone(),
    )
    .unwrap();
    (client, recorder)
}
