//! The outbox worker: applies queued C4C writes, with retries and backoff, once each even when
//! several replicas run workers on one PostgreSQL store (claims use `FOR UPDATE SKIP LOCKED`
//! and a lease; an item whose worker died is claimed again when its lease ends).
//!
//! Writes land here when they must outlive the request that decided them: a batch an operator
//! released, or an update an operator retries from the admin API. Every attempt's outcome is in
//! the mapping log.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::c4c::{C4cClient, C4cError, ErrorKind, model::Fields};
use crate::store::{LogEntry, OutboxItem, OutboxStatus, Store, StoreError};

/// The kinds of queued writes, as stored in `outbox.kind`.
pub mod kinds {
    /// PATCH of an employee's properties: `{"object_id": "…", "fields": {…}}`.
    pub const EMPLOYEE_UPDATE: &str = "c4c.employee.update";
}

/// The payload of [`kinds::EMPLOYEE_UPDATE`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmployeeUpdate {
    pub object_id: String,
    pub fields: serde_json::Map<String, Value>,
}

/// `[outbox]` settings.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// Run the worker in `serve` (every replica may; each item is applied once).
    pub enabled: bool,
    /// How often an idle worker looks for due items, in milliseconds.
    pub poll_interval_ms: u64,
    /// Items claimed per round.
    pub batch_size: u32,
    /// How long a claimed item stays reserved for its worker, in seconds; after that another
    /// worker may take it (the first is presumed dead). Longer than any C4C call.
    pub lease_secs: u64,
    /// Attempts before an item is marked failed and left for an operator.
    pub max_attempts: u32,
    /// Wait before the first retry, in milliseconds; doubled at each attempt, at most 10 minutes.
    pub base_backoff_ms: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            poll_interval_ms: 1000,
            batch_size: 20,
            lease_secs: 600,
            max_attempts: 8,
            base_backoff_ms: 5000,
        }
    }
}

const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// What happened to one item in a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    Retrying,
    Failed,
}

/// Why an item could not be applied.
#[derive(Debug, thiserror::Error)]
enum ApplyError {
    #[error("unknown outbox kind {0:?}")]
    UnknownKind(String),
    #[error("bad payload: {0}")]
    BadPayload(String),
    #[error("C4C: {0}")]
    C4c(#[from] C4cError),
}

impl ApplyError {
    /// Temporary failures are retried; the others need an operator.
    fn is_temporary(&self) -> bool {
        match self {
            ApplyError::C4c(error) => matches!(
                error.kind(),
                ErrorKind::Timeout
                    | ErrorKind::Transport
                    | ErrorKind::Server
                    | ErrorKind::Throttled
            ),
            _ => false,
        }
    }
}

pub struct OutboxWorker {
    store: Store,
    c4c: C4cClient,
    config: OutboxConfig,
    /// Names this worker in claims (`locked_by`) and the mapping log.
    name: String,
}

impl OutboxWorker {
    pub fn new(store: Store, c4c: C4cClient, config: OutboxConfig) -> Self {
        let name = format!(
            "{}-{}",
            hostname_or_pid(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Self {
            store,
            c4c,
            config,
            name,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs rounds until `shutdown` resolves; a round in progress finishes its current item.
    pub async fn run_until(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let idle = Duration::from_millis(self.config.poll_interval_ms.max(10));
        loop {
            let worked = tokio::select! {
                () = &mut shutdown => return,
                result = self.run_once() => match result {
                    Ok(outcomes) => !outcomes.is_empty(),
                    Err(error) => {
                        tracing::warn!(%error, "outbox round failed; retrying after the poll interval");
                        false
                    }
                },
            };
            if !worked {
                tokio::select! {
                    () = &mut shutdown => return,
                    () = tokio::time::sleep(idle) => {}
                }
            }
        }
    }

    /// One round: claims due items and applies them in order; returns what happened to each.
    pub async fn run_once(&self) -> Result<Vec<(i64, Outcome)>, StoreError> {
        let lease_ms =
            i64::try_from(self.config.lease_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let items = self
            .store
            .claim_outbox(
                &self.name,
                i64::from(self.config.batch_size.max(1)),
                lease_ms,
            )
            .await?;
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            let outcome = self.process(&item).await?;
            outcomes.push((item.id, outcome));
        }
        if let Ok((depth, oldest)) = self.store.outbox_depth().await {
            let age = oldest.map(|created| {
                Duration::from_millis(
                    u64::try_from(crate::store::now_millis().saturating_sub(created)).unwrap_or(0),
                )
            });
            crate::metrics::record_outbox(depth, age);
        }
        Ok(outcomes)
    }

    async fn process(&self, item: &OutboxItem) -> Result<Outcome, StoreError> {
        let started = std::time::Instant::now();
        let result = self.apply(item).await;
        let (outcome, error_text) = match &result {
            Ok(()) => (Outcome::Applied, None),
            Err(error)
                if error.is_temporary() && item.attempts < i64::from(self.config.max_attempts) =>
            {
                (Outcome::Retrying, Some(error.to_string()))
            }
            Err(error) => (Outcome::Failed, Some(error.to_string())),
        };
        match outcome {
            Outcome::Applied => {
                self.store
                    .finish_outbox(item.id, OutboxStatus::Done, None, None)
                    .await?;
            }
            Outcome::Retrying => {
                let retry_at = crate::store::now_millis() + backoff_ms(&self.config, item.attempts);
                self.store
                    .finish_outbox(
                        item.id,
                        OutboxStatus::Pending,
                        error_text.as_deref(),
                        Some(retry_at),
                    )
                    .await?;
            }
            Outcome::Failed => {
                self.store
                    .finish_outbox(item.id, OutboxStatus::Failed, error_text.as_deref(), None)
                    .await?;
            }
        }
        let object_id = item
            .payload
            .get("object_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let entry = LogEntry {
            request_id: format!("outbox-{}", item.id),
            at: crate::store::now_millis(),
            client: Some(format!("outbox:{}", self.name)),
            method: "OUTBOX".to_owned(),
            path: item.kind.clone(),
            resource_type: item.resource_id.as_ref().map(|_| "User".to_owned()),
            resource_id: item.resource_id.clone(),
            employee_id: None,
            object_id,
            status: match outcome {
                Outcome::Applied => 200,
                Outcome::Retrying => 503,
                Outcome::Failed => 502,
            },
            outcome: match outcome {
                Outcome::Applied => "applied",
                Outcome::Retrying => "retrying",
                Outcome::Failed => "failed",
            }
            .to_owned(),
            duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
            detail: json!({
                "outbox_id": item.id,
                "attempt": item.attempts,
                "error": error_text,
            }),
        };
        if let Err(error) = self.store.append_log(entry).await {
            tracing::warn!(%error, item = item.id, "outbox outcome not written to the mapping log");
        }
        Ok(outcome)
    }

    async fn apply(&self, item: &OutboxItem) -> Result<(), ApplyError> {
        match item.kind.as_str() {
            kinds::EMPLOYEE_UPDATE => {
                let update: EmployeeUpdate = serde_json::from_value(item.payload.clone())
                    .map_err(|error| ApplyError::BadPayload(error.to_string()))?;
                // No If-Match: the update states the wanted values, so applying it again
                // after an unknown outcome is harmless.
                self.c4c
                    .update_employee(&update.object_id, &Fields(update.fields), None)
                    .await?;
                Ok(())
            }
            other => Err(ApplyError::UnknownKind(other.to_owned())),
        }
    }
}

fn backoff_ms(config: &OutboxConfig, attempts: i64) -> i64 {
    let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    let wait = Duration::from_millis(config.base_backoff_ms)
        .saturating_mul(2_u32.saturating_pow(exponent))
        .min(MAX_BACKOFF);
    i64::try_from(wait.as_millis()).unwrap_or(i64::MAX)
}

fn hostname_or_pid() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| format!("pid{}", std::process::id()))
}

/// Queues an employee update for the worker.
pub async fn enqueue_employee_update(
    store: &Store,
    resource_id: Option<&str>,
    update: &EmployeeUpdate,
) -> Result<i64, StoreError> {
    let payload =
        serde_json::to_value(update).map_err(|error| StoreError::Corrupt(error.to_string()))?;
    store
        .enqueue_outbox(kinds::EMPLOYEE_UPDATE, resource_id, &payload)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let config = OutboxConfig {
            base_backoff_ms: 1000,
            ..OutboxConfig::default()
        };
        assert_eq!(backoff_ms(&config, 1), 1000);
        assert_eq!(backoff_ms(&config, 2), 2000);
        assert_eq!(backoff_ms(&config, 4), 8000);
        assert_eq!(backoff_ms(&config, 40), 600_000);
    }
}
