//! Bounded exponential backoff with full jitter, honouring `Retry-After`.

use std::time::Duration;

use rand::Rng;

use super::config::RetryConfig;
use super::error::C4cError;

/// Longest `Retry-After` we wait for inside one call; longer ones are returned to the caller.
const MAX_HONOURED_RETRY_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub(crate) struct RetryPolicy {
    pub max_attempts: u32,
    base: Duration,
    max: Duration,
}

impl RetryPolicy {
    pub fn from_config(c: &RetryConfig) -> Self {
        Self {
            max_attempts: c.max_attempts.max(1),
            base: Duration::from_millis(c.base_backoff_ms),
            max: Duration::from_millis(c.max_backoff_ms.max(c.base_backoff_ms)),
        }
    }

    /// The upper bound of the wait before attempt `attempt + 1` (attempt counts from 1).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1).min(20))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// Wait before the next attempt, or `None` to give up. `retryable` says whether this
    /// failure may be retried at all for the request at hand.
    pub fn next_delay(&self, attempt: u32, error: &C4cError, retryable: bool) -> Option<Duration> {
        if !retryable || attempt >= self.max_attempts {
            return None;
        }
        let retry_after = match error {
            C4cError::Throttled { retry_after } | C4cError::Unavailable { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        };
        if let Some(after) = retry_after {
            return (after <= MAX_HONOURED_RETRY_AFTER).then_some(after);
        }
        let ceiling = self.ceiling(attempt);
        let millis = ceiling.as_millis().min(u128::from(u64::MAX)) as u64;
        Some(Duration::from_millis(
            rand::thread_rng().gen_range(0..=millis),
        ))
    }
}

/// Parses `Retry-After` as delta-seconds or an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy::from_config(&RetryConfig {
            max_attempts: 4,
            base_backoff_ms: 100,
            max_backoff_ms: 1000,
        })
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = policy();
        assert_eq!(p.ceiling(1), Duration::from_millis(100));
        assert_eq!(p.ceiling(2), Duration::from_millis(200));
        assert_eq!(p.ceiling(3), Duration::from_millis(400));
        assert_eq!(p.ceiling(10), Duration::from_millis(1000));
        let err = C4cError::Unavailable {
            status: 503,
            message: String::new(),
            retry_after: None,
        };
        for _ in 0..50 {
            let d = p.next_delay(2, &err, true).unwrap();
            assert!(d <= Duration::from_millis(200));
        }
    }

    #[test]
    fn stops_after_max_attempts_or_when_not_retryable() {
        let p = policy();
        let err = C4cError::Throttled { retry_after: None };
        assert!(p.next_delay(4, &err, true).is_none());
        assert!(p.next_delay(1, &err, false).is_none());
    }

    #[test]
    fn honours_retry_after_within_bounds() {
        let p = policy();
        let err = C4cError::Throttled {
            retry_after: Some(Duration::from_secs(2)),
        };
        assert_eq!(p.next_delay(1, &err, true), Some(Duration::from_secs(2)));
        let err = C4cError::Throttled {
            retry_after: Some(Duration::from_secs(3600)),
        };
        assert_eq!(p.next_delay(1, &err, true), None);
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
