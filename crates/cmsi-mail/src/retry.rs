//! How a transport tries again after a transient failure: one schedule for
//! every transport, so that SMTP and SES back off alike.

use std::time::Duration;

/// At most `max_attempts` attempts in all, the first included; the n-th retry
/// waits `first_delay × 2ⁿ⁻¹`, at most `max_delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    first_delay: Duration,
    max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 3 attempts, 500 ms before the first retry, doubling up to 32 s.
    fn default() -> Self {
        RetryPolicy::new(3, Duration::from_millis(500))
    }
}

impl RetryPolicy {
    /// `max_attempts` attempts (at least 1), `first_delay` before the first
    /// retry, doubling each time up to 64 times `first_delay`.
    pub fn new(max_attempts: u32, first_delay: Duration) -> Self {
        RetryPolicy {
            max_attempts: max_attempts.max(1),
            first_delay,
            max_delay: first_delay.saturating_mul(64),
        }
    }

    /// The same policy with another number of attempts (at least 1).
    #[must_use]
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts.max(1);
        self
    }

    /// The same policy with another first delay (the cap moves with it).
    #[must_use]
    pub fn with_first_delay(self, first_delay: Duration) -> Self {
        RetryPolicy::new(self.max_attempts, first_delay)
    }

    /// The same policy with another cap on the delay.
    #[must_use]
    pub fn with_max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// The longest delay.
    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// Attempts in all, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// How long to wait after attempt number `attempt` (counted from 1)
    /// failed, or `None` when it was the last one allowed.
    pub fn delay_after(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let doublings = attempt.saturating_sub(1).min(30);
        Some(
            self.first_delay
                .saturating_mul(1 << doublings)
                .min(self.max_delay),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_stop_at_the_last_attempt() {
        let policy = RetryPolicy::new(9, Duration::from_millis(500));
        let delays: Vec<_> = (1..=9).map(|attempt| policy.delay_after(attempt)).collect();
        let ms = |n| Some(Duration::from_millis(n));
        assert_eq!(
            delays,
            [
                ms(500),
                ms(1_000),
                ms(2_000),
                ms(4_000),
                ms(8_000),
                ms(16_000),
                ms(32_000),
                ms(32_000),
                None
            ]
        );
        assert_eq!(RetryPolicy::new(0, Duration::ZERO).max_attempts(), 1);
        let capped = policy.with_max_delay(Duration::from_secs(3));
        assert_eq!(capped.delay_after(3), ms(2_000));
        assert_eq!(capped.delay_after(4), ms(3_000));
        assert_eq!(RetryPolicy::default().delay_after(3), None);
    }
}
