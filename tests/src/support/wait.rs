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

/// Waits until `GET /readyz` on `admin` answers 200: `Ok(Err(status))` if `child` exits first.
pub async fn readyz(
    child: &mut tokio::process::Child,
    admin: std::net::SocketAddr,
    timeout: Duration,
) -> Result<std::result::Result<(), std::process::ExitStatus>> {
    until("GET /readyz to answer 200", timeout, || {
        let exited = child.try_wait().ok().flatten();
        async move {
            if let Some(status) = exited {
                return Some(Err(status));
            }
            let reply = crate::support::client::get(admin, "/readyz", Duration::from_secs(1))
                .await
                .ok()?;
            (reply.status == 200).then_some(Ok(()))
        }
    })
    .await
}
