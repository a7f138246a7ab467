//! The one retry policy of every Azure call (ARM, blob storage, token requests): a try
//! says whether its failure is worth another; this module decides whether there is
//! another and how long to wait for it.
//!
//! Exponential backoff with jitter, at most `RetryPolicy::max_attempts` tries within
//! `RetryPolicy::max_elapsed`; a server's Retry-After replaces the backoff. A throttled
//! try (429, or storage's 503 ServerBusy) also closes a shared [`Gate`] until its
//! Retry-After, so the other requests of the same client wait instead of adding to the
//! storm. Which failures are worth another try is the caller's business (429 always;
//! 5xx and lost connections only for idempotent requests).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::BackoffBuilder;
use tokio::time::Instant;

/// How to wait: production sleeps on tokio's clock; tests record and skip.
pub type Sleep = Arc<dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

pub fn tokio_sleep() -> Sleep {
    Arc::new(|duration| Box::pin(tokio::time::sleep(duration)))
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Tries per request, the first included.
    pub max_attempts: usize,
    /// First backoff delay; doubles each try, with jitter.
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Give up rather than wait past this much time since the first try.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_elapsed: Duration::from_secs(180),
        }
    }
}

/// Closed until an instant after a throttled answer; shared by one client's requests.
#[derive(Debug, Default)]
pub struct Gate {
    until: Mutex<Option<Instant>>,
}

impl Gate {
    /// Wait until the gate is open.
    pub async fn wait(&self, sleep: &Sleep) {
        let until = *self.until.lock().expect("the gate lock is never poisoned");
        if let Some(until) = until {
            let now = Instant::now();
            if until > now {
                sleep(until - now).await;
            }
        }
    }

    /// Keep the gate closed for at least `delay` from now.
    pub fn close(&self, delay: Duration) {
        let until = Instant::now() + delay;
        let mut gate = self.until.lock().expect("the gate lock is never poisoned");
        if gate.is_none_or(|current| current < until) {
            *gate = Some(until);
        }
    }
}

/// One try's outcome.
pub enum Outcome<T, E> {
    Done(T),
    /// A failure worth another try. `after`: the server's Retry-After; `throttled`: the
    /// server asked every request to slow down (closes the gate).
    Retry {
        error: E,
        after: Option<Duration>,
        throttled: bool,
    },
    Fail(E),
}

/// The last try's error and how many tries there were.
#[derive(Debug)]
pub struct GaveUp<E> {
    pub error: E,
    pub attempts: usize,
}

/// Run `attempt` (given the try's number, from 1) until it is done, fails for good, or
/// the policy allows no further try; then the last error is returned.
pub async fn run<T, E, F, Fut>(
    policy: &RetryPolicy,
    sleep: &Sleep,
    gate: Option<&Gate>,
    mut attempt: F,
) -> Result<T, GaveUp<E>>
where
    E: std::fmt::Display,
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Outcome<T, E>>,
{
    let mut delays = backon::ExponentialBuilder::default()
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(policy.max_attempts.saturating_sub(1))
        .with_jitter()
        .build();
    let started = Instant::now();
    // The waits asked for count in full, even when a sleep returns early.
    let mut waited = Duration::ZERO;
    let mut attempts = 0;
    loop {
        if let Some(gate) = gate {
            gate.wait(sleep).await;
        }
        attempts += 1;
        let (error, after, throttled) = match attempt(attempts).await {
            Outcome::Done(value) => return Ok(value),
            Outcome::Fail(error) => return Err(GaveUp { error, attempts }),
            Outcome::Retry {
                error,
                after,
                throttled,
            } => (error, after, throttled),
        };
        let Some(backoff) = delays.next() else {
            return Err(GaveUp { error, attempts });
        };
        let delay = after.unwrap_or(backoff);
        if started.elapsed().max(waited) + delay > policy.max_elapsed {
            return Err(GaveUp { error, attempts });
        }
        if throttled && let Some(gate) = gate {
            gate.close(delay);
        }
        tracing::info!(reason = %error, ?delay, attempt = attempts, "retrying");
        sleep(delay).await;
        waited += delay;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn always_throttled<T>(after: u64) -> Outcome<T, String> {
        Outcome::Retry {
            error: "throttled".into(),
            after: Some(Duration::from_secs(after)),
            throttled: true,
        }
    }

    /// On tokio's paused clock: the sleeps really pass, and no try starts a wait that
    /// would end after the budget.
    #[tokio::test(start_paused = true)]
    async fn the_time_budget_ends_the_retries() {
        let policy = RetryPolicy {
            max_attempts: 100,
            ..RetryPolicy::default()
        };
        let started = Instant::now();
        let mut tried_at = Vec::new();
        let gave_up = run(&policy, &tokio_sleep(), Some(&Gate::default()), |_| {
            tried_at.push(started.elapsed().as_secs());
            async { always_throttled::<()>(50) }
        })
        .await
        .unwrap_err();
        // Tries at 0, 50, 100, 150 s; one more would wait until 200 s, past 180 s.
        assert_eq!(tried_at, [0, 50, 100, 150]);
        assert_eq!(gave_up.attempts, 4);
        assert_eq!(gave_up.error, "throttled");
        assert!(started.elapsed() <= policy.max_elapsed);
    }

    /// A sleep that returns at once still spends the budget it was asked to wait.
    #[tokio::test]
    async fn waits_count_even_when_the_sleep_returns_early() {
        let policy = RetryPolicy {
            max_attempts: 100,
            max_elapsed: Duration::from_secs(10),
            ..RetryPolicy::default()
        };
        let instant: Sleep = Arc::new(|_| Box::pin(async {}));
        let gave_up = run(&policy, &instant, None, |_| async {
            always_throttled::<()>(4)
        })
        .await
        .unwrap_err();
        assert_eq!(
            gave_up.attempts, 3,
            "tries at 0, 4 and 8 s; 12 s is past 10 s"
        );
    }

    #[tokio::test]
    async fn failures_not_worth_a_retry_end_at_once() {
        let instant: Sleep = Arc::new(|_| Box::pin(async {}));
        let gave_up = run(&RetryPolicy::default(), &instant, None, |_| async {
            Outcome::<(), _>::Fail("bad request".to_string())
        })
        .await
        .unwrap_err();
        assert_eq!(gave_up.attempts, 1);
        let mut tries = 0;
        let done = run(&RetryPolicy::default(), &instant, None, |n| {
            tries = n;
            async move {
                if n < 3 {
                    always_throttled(1)
                } else {
                    Outcome::Done(n)
                }
            }
        })
        .await
        .unwrap();
        assert_eq!((done, tries), (3, 3));
    }
}
