//! A strict C4C OData v2 simulator with fault injection, for tests, the demo and benchmarks.
//!
//! ```no_run
//! # async fn demo() -> Result<(), c4c_scim_bridge::sim::SimError> {
//! use c4c_scim_bridge::sim::{SimConfig, Simulator};
//! let sim = Simulator::start(SimConfig { generated_employees: 50, ..SimConfig::default() }).await?;
//! println!("{}", sim.service_url()); // http://127.0.0.1:PORT/sap/c4c/odata/v1/c4codataapi
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Shares no code with `crate::c4c`, so its strictness does not depend on our client.

mod auth;
mod batch;
mod cli;
mod config;
mod control;
mod error;
mod faults;
mod filter;
mod metadata;
mod model;
mod odata;
mod query;
mod render;
mod seed;
mod server;
mod store;
mod table;
pub mod tls;
mod values;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, RwLock};

use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use cli::{SimArgs, run_cli};
pub use config::{
    Access, CsrfPolicy, DEFAULT_PASSWORD, DEFAULT_USER, OAuthClient, SimConfig, TechnicalUser,
    TlsSettings, TopPolicy,
};
pub use error::SimError;
pub use faults::{Counters, Fault, FaultControl, FaultScope, FaultSettings, QueuedFault};
pub use seed::{generate_employees, load_seed_file};

use model::SetId;
use odata::Env;
use server::Shared;
use store::{Actor, Db, UpdateMode, record_to_map};

/// Starts simulators.
pub struct Simulator;

impl Simulator {
    /// Binds (127.0.0.1:0 unless `config.listen` is set), seeds the tenant and starts serving.
    pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
        let (listener, addr) = server::bind(&config).await?;
        let tls = match &config.tls {
            Some(t) => Some(tokio_rustls::TlsAcceptor::from(tls::server_config(t)?)),
            None => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            addr.ip().to_string()
        };
        let origin = match addr {
            SocketAddr::V6(_) if !addr.ip().is_unspecified() => {
                format!("{scheme}://[{host}]:{}", addr.port())
            }
            _ => format!("{scheme}://{host}:{}", addr.port()),
        };
        let env = Env {
            base: format!("{origin}{}", server::SERVICE_PATH),
            allow_ne: config.allow_ne,
            top_policy: config.top_policy,
            page_size: config.page_size.max(1),
            expand_page_size: config.expand_page_size.max(1),
        };
        let mut db = Db::new(
            config.business_roles.iter().cloned().collect(),
            config.org_units.iter().cloned().collect(),
        );
        let seeder = Actor {
            formatted_name: "SAP WORKER".into(),
            identity_uuid: "00000000-0000-0000-0000-000000000001".into(),
        };
        let generated = generate_employees(config.generated_employees, config.generator_seed);
        for (i, body) in config
            .seed_employees
            .iter()
            .chain(generated.iter())
            .enumerate()
        {
            db.create(SetId::Employee, body, None, &seeder)
                .map_err(|e| SimError::Seed(format!("employee #{}: {}", i + 1, e.message)))?;
        }
        let actors: HashMap<String, Actor> = config
            .users
            .iter()
            .map(|u| {
                let id = uuid::Uuid::new_v4().to_string().to_ascii_uppercase();
                (
                    u.name.clone(),
                    Actor {
                        formatted_name: u.name.clone(),
                        identity_uuid: id,
                    },
                )
            })
            .collect();
        let faults = Arc::new(faults::FaultState::new(config.faults.clone()));
        let shared = Arc::new(Shared {
            db: RwLock::new(db),
            env,
            auth: auth::AuthState::new(&config),
            faults,
            counters: faults::AtomicCounters::default(),
            in_flight: AtomicUsize::new(0),
            config,
            actors,
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(server::serve(listener, shared.clone(), tls, stop_rx));
        Ok(SimHandle {
            shared,
            addr,
            origin,
            stop: stop_tx,
            task: Some(task),
        })
    }
}

/// A running simulator. Dropping it stops it too; `shutdown()` waits until it has stopped.
pub struct SimHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    origin: String,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// One employee as the tenant stores it (property name → JSON value as the API renders it).
pub type EmployeeSnapshot = HashMap<String, Value>;

impl SimHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
    /// `http(s)://127.0.0.1:PORT/sap/c4c/odata/v1/c4codataapi` (no trailing slash).
    pub fn service_url(&self) -> String {
        self.shared.env.base.clone()
    }
    /// `http(s)://127.0.0.1:PORT/sap/bc/sec/oauth2/token`.
    pub fn token_url(&self) -> String {
        format!("{}{}", self.origin, server::TOKEN_PATH)
    }
    /// `http(s)://127.0.0.1:PORT/__sim` (control API).
    pub fn control_url(&self) -> String {
        format!("{}/__sim", self.origin)
    }
    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    pub fn faults(&self) -> FaultControl {
        let (csrf, oauth) = (self.shared.clone(), self.shared.clone());
        FaultControl {
            state: self.shared.faults.clone(),
            invalidate_csrf: Arc::new(move || csrf.auth.invalidate_sessions()),
            revoke_oauth_tokens: Arc::new(move || oauth.auth.revoke_tokens()),
        }
    }

    pub fn counters(&self) -> Counters {
        self.shared.counters.snapshot()
    }
    pub fn reset_counters(&self) {
        self.shared.counters.reset();
    }

    fn db(&self) -> std::sync::RwLockReadGuard<'_, Db> {
        self.shared.db.read().unwrap_or_else(|p| p.into_inner())
    }
    fn db_mut(&self) -> std::sync::RwLockWriteGuard<'_, Db> {
        self.shared.db.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Every employee, in the tenant's default order.
    pub fn employees(&self) -> Vec<EmployeeSnapshot> {
        self.db()
            .table(SetId::Employee)
            .values()
            .map(|r| record_to_map(SetId::Employee, r))
            .collect()
    }
    pub fn employee(&self, object_id: &str) -> Option<EmployeeSnapshot> {
        self.db()
            .get(SetId::Employee, object_id)
            .map(|r| record_to_map(SetId::Employee, r))
    }
    pub fn employee_by_employee_id(&self, employee_id: &str) -> Option<EmployeeSnapshot> {
        self.employees()
            .into_iter()
            .find(|e| e.get("EmployeeID").and_then(Value::as_str) == Some(employee_id))
    }
    /// Business role IDs assigned to an employee (by ObjectID).
    pub fn business_roles_of(&self, object_id: &str) -> Vec<String> {
        let db = self.db();
        let Some(emp) = db.get(SetId::Employee, object_id) else {
            return vec![];
        };
        db.navigate(SetId::Employee, emp, "EmployeeUserBusinessRoleAssignment")
            .iter()
            .filter_map(|r| {
                r.get("BusinessRoleID")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            })
            .collect()
    }
    /// Number of records in an entity set, e.g. `"EmployeeUserBusinessRoleAssignmentCollection"`.
    pub fn count(&self, entity_set: &str) -> Option<usize> {
        SetId::from_set_name(entity_set).map(|s| self.db().table(s).len())
    }

    /// Creates an employee as a POST body would (same validation); returns its ObjectID.
    pub fn plant_employee(&self, body: Value) -> Result<String, String> {
        let actor = Actor {
            formatted_name: "SAP WORKER".into(),
            identity_uuid: "00000000-0000-0000-0000-000000000001".into(),
        };
        self.db_mut()
            .create(SetId::Employee, &body, None, &actor)
            .map_err(|e| e.message)
    }

    /// Changes an employee behind the API's back (as a tenant administrator would in the UI):
    /// a MERGE with the same rules, bumping ChangedOn and the ETag.
    pub fn edit_employee(&self, object_id: &str, changes: Value) -> Result<(), String> {
        let actor = Actor {
            formatted_name: "SAP WORKER".into(),
            identity_uuid: "00000000-0000-0000-0000-000000000001".into(),
        };
        self.db_mut()
            .update(
                SetId::Employee,
                object_id,
                &changes,
                UpdateMode::Merge,
                None,
                &actor,
            )
            .map_err(|e| e.message)
    }

    /// Removes an employee (with its assignments and business user) behind the API's back, as a
    /// tenant administrator's clean-up would; `false` when there is no such employee.
    pub fn remove_employee(&self, object_id: &str) -> bool {
        self.db_mut().remove_employee(object_id)
    }

    /// Stops accepting, drops every open connection and waits for the server task.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
