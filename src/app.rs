//! Application start-up: bind first (port 0 allowed, so tests and the demo learn the real port),
//! then serve until a shutdown signal, finishing in-flight requests within a grace period.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use std::sync::Arc;

use crate::c4c::C4cClient;
use crate::config::{Config, ConfigError};
use crate::http::{AppState, router};
use crate::metrics::C4cMetrics;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    #[error(
        "cannot listen on {addr}: {reason}; choose another address with --listen or server.listen"
    )]
    Bind { addr: SocketAddr, reason: String },
    #[error("server error: {0}")]
    Serve(String),
    /// A command given wrong input by the operator.
    #[error("{0}")]
    Usage(String),
}

impl AppError {
    /// Exit code: 2 for configuration errors the operator must fix, 1 for runtime failures.
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Config(_) | AppError::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// Opens the configured store, applying migrations when `migrate` is set.
pub async fn open_store(config: &Config, migrate: bool) -> Result<Store, AppError> {
    let url = config.store.resolved_url()?;
    let store = Store::connect(url.expose_secret(), config.store.max_connections).await?;
    if migrate {
        store.migrate().await?;
    }
    Ok(store)
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
    /// Drift reconciliation, when a tenant is configured (its job runs if `[reconcile] enabled`).
    reconciler: Option<crate::provisioning::reconcile::Reconciler>,
}

impl Application {
    /// Binds the listener and prepares the state; nothing is served yet.
    pub async fn build(config: Config, store: Store) -> Result<Self, AppError> {
        let addr = config.server.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|error| AppError::Bind {
                addr,
                reason: error.to_string(),
            })?;
        Self::from_listener(listener, config, store).with_c4c_from_config()
    }

    pub fn from_listener(listener: TcpListener, config: Config, store: Store) -> Self {
        let state = AppState::new(config, store, None);
        Self {
            listener,
            state,
            reconciler: None,
        }
    }

    /// Connects the C4C client when `[c4c]` is configured; its calls feed the metrics.
    pub fn with_c4c_from_config(mut self) -> Result<Self, AppError> {
        if let Some(c4c) = &self.state.config.c4c {
            let client = C4cClient::with_observer(
                c4c.clone(),
                self.state.c4c_status.observer(Arc::new(C4cMetrics)),
            )
            .map_err(|error| AppError::Config(ConfigError::Invalid(error.to_string())))?;
            let mapping = self.state.config.resolved_mapping()?;
            let mapper = crate::mapping::Mapper::new(mapping, None).map_err(|problems| {
                let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
                AppError::Config(ConfigError::Invalid(format!(
                    "mapping rules: {}",
                    problems.join("; ")
                )))
            })?;
            let mapper = Arc::new(mapper);
            self.reconciler = Some(
                crate::provisioning::reconcile::Reconciler::new(
                    self.state.store.clone(),
                    client.clone(),
                    mapper.clone(),
                    self.state.config.reconcile.clone(),
                )
                .with_safety(self.state.config.safety.clone()),
            );
            let users = Arc::new(
                crate::provisioning::users::UserService::new(
                    self.state.store.clone(),
                    client.clone(),
                    mapper,
                )
                .with_safety(self.state.config.safety.clone()),
            );
            let groups = Arc::new(
                crate::provisioning::groups::GroupService::new(
                    self.state.store.clone(),
                    client.clone(),
                    self.state.config.groups.clone(),
                )
                .map_err(|problem| AppError::Config(ConfigError::Invalid(problem)))?
                .with_safety(users.safety().clone()),
            );
            if self.state.config.bulk.enabled {
                self.state.bulk = Some(Arc::new(crate::provisioning::bulk::BulkService::new(
                    users.clone(),
                    groups.clone(),
                    self.state.config.bulk.clone(),
                    self.state.config.server.body_limit_bytes,
                )));
            }
            self.state.users = Some(users);
            self.state.groups = Some(groups);
            self.state.c4c = Some(client);
        }
        Ok(self)
    }

    /// Checks the mapping rules against the tenant's `$metadata` before serving: a rule that
    /// cannot work is a configuration error now, not a failed provisioning later. A tenant that
    /// cannot be reached does not stop the start (readiness reports it).
    pub async fn check_rules_against_tenant(&self) -> Result<(), AppError> {
        let Some(client) = &self.state.c4c else {
            return Ok(());
        };
        let metadata = match tokio::time::timeout(Duration::from_secs(30), client.metadata()).await
        {
            Ok(Ok(metadata)) => metadata,
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot read the tenant's $metadata; mapping rules not checked");
                return Ok(());
            }
            Err(_) => {
                tracing::warn!(
                    "the tenant's $metadata did not arrive in 30 s; mapping rules not checked"
                );
                return Ok(());
            }
        };
        let mapping = self.state.config.resolved_mapping()?;
        let problems = crate::mapping::validate(&mapping, &metadata);
        for problem in &problems {
            tracing::warn!(%problem, "mapping rule");
        }
        match problems
            .iter()
            .find(|problem| problem.severity == crate::mapping::Severity::Error)
        {
            Some(problem) => Err(AppError::Config(ConfigError::Invalid(format!(
                "mapping rule does not fit the tenant's $metadata: {problem}"
            )))),
            None => {
                if let Some(users) = &self.state.users {
                    users.mapper().learn_tenant(&metadata);
                }
                Ok(())
            }
        }
    }

    pub fn local_addr(&self) -> Result<SocketAddr, AppError> {
        self.listener.local_addr().map_err(|error| AppError::Bind {
            addr: self.state.config.server.listen,
            reason: error.to_string(),
        })
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish for at most the
    /// configured grace period.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let grace = Duration::from_secs(self.state.config.server.shutdown_grace_secs);
        let store = self.state.store.clone();
        let (worker_stop, worker_stopped) = tokio::sync::oneshot::channel::<()>();
        let worker = match &self.state.c4c {
            Some(c4c) if self.state.config.outbox.enabled => {
                let worker = crate::provisioning::outbox::OutboxWorker::new(
                    store.clone(),
                    c4c.clone(),
                    self.state.config.outbox.clone(),
                );
                tracing::info!(worker = worker.name(), "outbox worker started");
                Some(tokio::spawn(async move {
                    worker
                        .run_until(async {
                            let _ = worker_stopped.await;
                        })
                        .await;
                }))
            }
            _ => None,
        };
        let (job_stop, job_stopped) = tokio::sync::oneshot::channel::<()>();
        let job = match self.reconciler.clone() {
            Some(reconciler) if self.state.config.reconcile.enabled => {
                tracing::info!(
                    interval_secs = self.state.config.reconcile.interval_secs,
                    "reconciliation job started"
                );
                let job = crate::provisioning::reconcile::ReconcileJob::new(reconciler);
                Some(tokio::spawn(async move {
                    job.run_until(async {
                        let _ = job_stopped.await;
                    })
                    .await;
                }))
            }
            _ => None,
        };
        if let (Some(cert), Some(key)) = (
            self.state.config.server.tls_cert_file.clone(),
            self.state.config.server.tls_key_file.clone(),
        ) {
            let result = self.serve_tls(&cert, &key, grace, shutdown).await;
            stop_worker(worker_stop, worker, grace).await;
            stop_job(job_stop, job, grace).await;
            store.close().await;
            return result;
        }
        let app = router(self.state);
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            let _ = stopping_tx.send(());
        };
        let server = axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(signal);
        let server = async move {
            server
                .await
                .map_err(|error| AppError::Serve(error.to_string()))
        };
        tokio::pin!(server);
        let result = tokio::select! {
            result = &mut server => result,
            () = async {
                let _ = stopping_rx.await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(grace_secs = grace.as_secs(), "shutdown grace period over; dropping open connections");
                Ok(())
            }
        };
        // The worker finishes the item it is applying (C4C calls have their own time limit).
        let _ = worker_stop.send(());
        if let Some(worker) = worker
            && tokio::time::timeout(grace, worker).await.is_err()
        {
            tracing::warn!(
                "outbox worker still busy after the grace period; its lease will expire"
            );
        }
        stop_job(job_stop, job, grace).await;
        store.close().await;
        result
    }
}

impl Application {
    /// Serves HTTPS (rustls) until `shutdown`, then drains like the plain server.
    async fn serve_tls(
        self,
        cert: &std::path::Path,
        key: &std::path::Path,
        grace: Duration,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let tls = crate::http::tls::server_config(cert, key)
            .map_err(|reason| AppError::Config(ConfigError::Invalid(reason)))?;
        let listener = self
            .listener
            .into_std()
            .map_err(|error| AppError::Serve(error.to_string()))?;
        let app = router(self.state);
        let handle = axum_server::Handle::new();
        let on_signal = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            on_signal.graceful_shutdown(Some(grace));
        });
        axum_server::from_tcp_rustls(
            listener,
            axum_server::tls_rustls::RustlsConfig::from_config(tls),
        )
        .handle(handle)
        .serve(app.into_make_service_with_connect_info::<SocketAddr>())
        .await
        .map_err(|error| AppError::Serve(error.to_string()))
    }
}

/// Stops the outbox worker; it finishes the item it is applying (C4C calls have their own time
/// limit), or is abandoned after `grace` (its lease then lets another worker take the item).
async fn stop_worker(
    stop: tokio::sync::oneshot::Sender<()>,
    worker: Option<tokio::task::JoinHandle<()>>,
    grace: Duration,
) {
    let _ = stop.send(());
    if let Some(worker) = worker
        && tokio::time::timeout(grace, worker).await.is_err()
    {
        tracing::warn!("outbox worker still busy after the grace period; its lease will expire");
    }
}

/// Stops the reconciliation job between runs; a run in progress gets `grace` to finish, else it
/// is abandoned and stays `running` in the store (the next run starts from the same watermark).
async fn stop_job(
    stop: tokio::sync::oneshot::Sender<()>,
    job: Option<tokio::task::JoinHandle<()>>,
    grace: Duration,
) {
    let _ = stop.send(());
    if let Some(job) = job
        && tokio::time::timeout(grace, job).await.is_err()
    {
        tracing::warn!("reconciliation still running after the grace period; abandoned");
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
