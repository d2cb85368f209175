//! The one retry policy: capped exponential backoff with jitter, used by every retry loop.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// Delays between attempts: doubling from `min` up to `max`, with jitter so that
/// many retriers do not wake together. Never runs out; [`Backoff::reset`] after a success.
#[derive(Debug)]
pub struct Backoff {
    builder: ExponentialBuilder,
    delays: ExponentialBackoff,
    attempts: u32,
}

impl Backoff {
    /// A policy from `min` to `max`.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        let builder = ExponentialBuilder::default()
            .with_min_delay(min)
            .with_max_delay(max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times();
        Backoff {
            delays: builder.build(),
            builder,
            attempts: 0,
        }
    }

    /// The default for talking to things outside the process: 100 ms up to 30 s.
    pub fn external() -> Backoff {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(30))
    }

    /// The next delay to wait before retrying.
    pub fn next_delay(&mut self) -> Duration {
        self.attempts += 1;
        self.delays.next().unwrap_or_else(|| {
            self.builder
                .build()
                .next()
                .unwrap_or(Duration::from_secs(1))
        })
    }

    /// How many delays were handed out since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.delays = self.builder.build();
        self.attempts = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_is_capped_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_millis(80));
        let delays: Vec<Duration> = (0..10).map(|_| b.next_delay()).collect();
        // Jitter adds up to one more `delay` on top, so the cap bounds at 2x max.
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(160)));
        assert!(delays[6] >= Duration::from_millis(80));
        assert_eq!(b.attempts(), 10);
        b.reset();
        assert_eq!(b.attempts(), 0);
        assert!(b.next_delay() < Duration::from_millis(40));
    }
}
