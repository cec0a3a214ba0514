//! Condition waits with a deadline, instead of sleeps.

use std::{future::Future, time::Duration};

use anyhow::{Result, bail};
use tokio::time::Instant;

const POLL: Duration = Duration::from_millis(20);

/// Polls `check` until it returns `Some`, failing after `timeout` with a message naming `what`.
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `check` until it returns true; see [`until`].
pub async fn until_true<F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    until(what, timeout, || {
        let done = check();
        async move { done.await.then_some(()) }
    })
    .await
}
