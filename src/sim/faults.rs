//! Fault injection and request counters, shared by the server and the test handle.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Standing fault settings; rates are probabilities per request (0.0 ..= 1.0).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSettings {
    /// Added to every OData and token request.
    pub latency_ms: u64,
    /// Up to this much more, uniformly random.
    pub jitter_ms: u64,
    pub error_500_rate: f64,
    pub error_503_rate: f64,
    pub error_429_rate: f64,
    /// `Retry-After` seconds sent with injected 429s (none when `None`; C4C documents none).
    pub retry_after_secs: Option<u64>,
    /// Connection reset before any response.
    pub reset_rate: f64,
    /// Every request gets 503 with a maintenance message.
    pub maintenance: bool,
    /// Requests beyond this many in flight get 503.
    pub max_in_flight: Option<usize>,
    /// How long a `Hang` fault holds the request before dropping the connection (default 60 s).
    pub hang_ms: Option<u64>,
}

/// One injected failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Fault {
    Status500,
    /// 503 Service Unavailable (maintenance / overload).
    Status503,
    Status429 {
        #[serde(default)]
        retry_after_secs: Option<u64>,
    },
    /// The connection is reset before any response.
    Reset,
    /// No response until the hang time has passed; then the connection is dropped.
    Hang,
    /// The write is performed, then the connection is reset: the client cannot know it happened.
    CommitThenDrop,
    /// The write is performed, then no response until the hang time has passed; then the
    /// connection is dropped. Holds a client inside the window where C4C has committed and the
    /// client does not know it (to kill the client there).
    CommitThenHang,
}

/// Which requests a queued fault applies to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultScope {
    #[default]
    Any,
    /// GET/HEAD OData requests.
    Reads,
    /// POST/PUT/PATCH/MERGE/DELETE and `$batch`.
    Writes,
    /// The OAuth token endpoint.
    Token,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedFault {
    pub fault: Fault,
    #[serde(default)]
    pub scope: FaultScope,
    pub remaining: u32,
}

#[derive(Default)]
pub(crate) struct FaultState {
    settings: Mutex<FaultSettings>,
    queue: Mutex<VecDeque<QueuedFault>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these short locks cannot leave them inconsistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FaultState {
    pub(crate) fn new(settings: FaultSettings) -> Self {
        FaultState {
            settings: Mutex::new(settings),
            queue: Mutex::new(VecDeque::new()),
        }
    }

    pub(crate) fn settings(&self) -> FaultSettings {
        lock(&self.settings).clone()
    }

    pub(crate) fn set(&self, s: FaultSettings) {
        *lock(&self.settings) = s;
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut FaultSettings)) {
        f(&mut lock(&self.settings));
    }

    pub(crate) fn push(&self, q: QueuedFault) {
        if q.remaining > 0 {
            lock(&self.queue).push_back(q);
        }
    }

    pub(crate) fn queued(&self) -> Vec<QueuedFault> {
        lock(&self.queue).iter().copied().collect()
    }

    pub(crate) fn clear(&self) {
        *lock(&self.settings) = FaultSettings::default();
        lock(&self.queue).clear();
    }

    /// Picks the fault for one request: queued faults first, then the standing rates.
    pub(crate) fn pick(&self, is_write: bool, is_token: bool) -> Option<Fault> {
        {
            let mut q = lock(&self.queue);
            let matches = |s: FaultScope| match s {
                FaultScope::Any => true,
                FaultScope::Reads => !is_write && !is_token,
                FaultScope::Writes => is_write,
                FaultScope::Token => is_token,
            };
            if let Some(pos) = q.iter().position(|f| matches(f.scope)) {
                let fault = q.get(pos).map(|f| f.fault);
                if let Some(entry) = q.get_mut(pos) {
                    entry.remaining = entry.remaining.saturating_sub(1);
                    if entry.remaining == 0 {
                        q.remove(pos);
                    }
                }
                return fault;
            }
        }
        let s = self.settings();
        let mut rng = rand::thread_rng();
        let mut roll = |rate: f64| rate > 0.0 && rng.r#gen::<f64>() < rate;
        if roll(s.reset_rate) {
            Some(Fault::Reset)
        } else if roll(s.error_500_rate) {
            Some(Fault::Status500)
        } else if roll(s.error_503_rate) {
            Some(Fault::Status503)
        } else if roll(s.error_429_rate) {
            Some(Fault::Status429 {
                retry_after_secs: s.retry_after_secs,
            })
        } else {
            None
        }
    }

    pub(crate) fn latency(&self) -> Duration {
        let s = self.settings();
        let jitter = if s.jitter_ms > 0 {
            rand::thread_rng().gen_range(0..=s.jitter_ms)
        } else {
            0
        };
        Duration::from_millis(s.latency_ms + jitter)
    }
}

/// Snapshot of the request counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Every request to the OData service or token endpoint (control API excluded).
    pub total: u64,
    /// GET/HEAD of entities and collections (incl. `$count`), excluding metadata and service document.
    pub reads: u64,
    pub metadata: u64,
    pub service_document: u64,
    /// Requests carrying `x-csrf-token: fetch`.
    pub csrf_fetches: u64,
    pub posts: u64,
    pub patches: u64,
    pub puts: u64,
    pub merges: u64,
    pub deletes: u64,
    /// `$batch` requests (their parts are counted in `batch_parts`, not in reads/writes).
    pub batches: u64,
    pub batch_parts: u64,
    pub token_requests: u64,
    /// 401 answers.
    pub unauthorized: u64,
    /// 403 answers for a missing or stale CSRF token.
    pub csrf_rejections: u64,
    /// Responses with status ≥ 400 (injected faults included).
    pub errors: u64,
    pub faults_injected: u64,
}

impl Counters {
    /// POST + PATCH + PUT + MERGE + DELETE (outside `$batch`).
    pub fn writes(&self) -> u64 {
        self.posts + self.patches + self.puts + self.merges + self.deletes
    }
}

macro_rules! atomic_counters {
    ($($f:ident),*) => {
        #[derive(Default)]
        pub(crate) struct AtomicCounters { $(pub $f: AtomicU64,)* }
        impl AtomicCounters {
            pub(crate) fn snapshot(&self) -> Counters {
                Counters { $($f: self.$f.load(Ordering::Relaxed),)* }
            }
            pub(crate) fn reset(&self) {
                $(self.$f.store(0, Ordering::Relaxed);)*
            }
        }
    };
}

atomic_counters!(
    total,
    reads,
    metadata,
    service_document,
    csrf_fetches,
    posts,
    patches,
    puts,
    merges,
    deletes,
    batches,
    batch_parts,
    token_requests,
    unauthorized,
    csrf_rejections,
    errors,
    faults_injected
);

pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Fault controls for tests (`SimHandle::faults()`); every change applies to the next request.
#[derive(Clone)]
pub struct FaultControl {
    pub(crate) state: Arc<FaultState>,
    pub(crate) invalidate_csrf: Arc<dyn Fn() + Send + Sync>,
    pub(crate) revoke_oauth_tokens: Arc<dyn Fn() + Send + Sync>,
}

impl FaultControl {
    pub fn settings(&self) -> FaultSettings {
        self.state.settings()
    }
    pub fn set(&self, settings: FaultSettings) {
        self.state.set(settings);
    }
    /// Clears every standing and queued fault.
    pub fn clear(&self) {
        self.state.clear();
    }
    pub fn set_latency(&self, fixed: Duration, jitter: Duration) {
        self.state.update(|s| {
            s.latency_ms = fixed.as_millis() as u64;
            s.jitter_ms = jitter.as_millis() as u64;
        });
    }
    pub fn set_error_rates(&self, rate_500: f64, rate_503: f64, rate_429: f64) {
        self.state.update(|s| {
            s.error_500_rate = rate_500;
            s.error_503_rate = rate_503;
            s.error_429_rate = rate_429;
        });
    }
    pub fn set_retry_after(&self, secs: Option<u64>) {
        self.state.update(|s| s.retry_after_secs = secs);
    }
    pub fn set_reset_rate(&self, rate: f64) {
        self.state.update(|s| s.reset_rate = rate);
    }
    pub fn set_maintenance(&self, on: bool) {
        self.state.update(|s| s.maintenance = on);
    }
    pub fn set_max_in_flight(&self, cap: Option<usize>) {
        self.state.update(|s| s.max_in_flight = cap);
    }
    pub fn set_hang_time(&self, d: Duration) {
        self.state
            .update(|s| s.hang_ms = Some(d.as_millis() as u64));
    }
    /// The next `count` requests in `scope` fail with `fault`.
    pub fn fail_next(&self, count: u32, fault: Fault, scope: FaultScope) {
        self.state.push(QueuedFault {
            fault,
            scope,
            remaining: count,
        });
    }
    pub fn queued(&self) -> Vec<QueuedFault> {
        self.state.queued()
    }
    /// Ends every session: the next write with an old CSRF token gets 403 `Required`.
    pub fn invalidate_csrf(&self) {
        (self.invalidate_csrf)();
    }
    /// Revokes every OAuth access token issued so far (an admin revoking the bridge's token).
    pub fn revoke_oauth_tokens(&self) {
        (self.revoke_oauth_tokens)();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_faults_apply_in_scope_and_count_down() {
        let s = FaultState::new(FaultSettings::default());
        s.push(QueuedFault {
            fault: Fault::Status503,
            scope: FaultScope::Writes,
            remaining: 2,
        });
        assert_eq!(s.pick(false, false), None);
        assert_eq!(s.pick(true, false), Some(Fault::Status503));
        assert_eq!(s.pick(true, false), Some(Fault::Status503));
        assert_eq!(s.pick(true, false), None);
    }

    #[test]
    fn rates_of_one_always_fire() {
        let s = FaultState::new(FaultSettings {
            error_429_rate: 1.0,
            retry_after_secs: Some(3),
            ..FaultSettings::default()
        });
        for _ in 0..20 {
            assert_eq!(
                s.pick(false, false),
                Some(Fault::Status429 {
                    retry_after_secs: Some(3)
                })
            );
        }
        s.clear();
        assert_eq!(s.pick(false, false), None);
    }

    #[test]
    fn settings_round_trip_as_json() {
        let v: FaultSettings =
            serde_json::from_str(r#"{"latency_ms":5,"maintenance":true}"#).unwrap();
        assert_eq!(v.latency_ms, 5);
        assert!(v.maintenance);
        assert!(serde_json::from_str::<FaultSettings>(r#"{"nope":1}"#).is_err());
        let f: QueuedFault = serde_json::from_str(
            r#"{"fault":{"kind":"commit_then_drop"},"scope":"writes","remaining":1}"#,
        )
        .unwrap();
        assert_eq!(f.fault, Fault::CommitThenDrop);
    }
}
