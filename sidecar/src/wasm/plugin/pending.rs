//! What a callback asked for that happens after it returns: the HTTP and gRPC calls it
//! dispatched, and the tick timer of its instance's root context.

use std::time::Duration;

use super::Plugin;
use crate::wasm::calls;
use crate::wasm::host::PendingCall;

impl Plugin {
    /// Starts dispatched calls and (re)arms the tick timer of the instance in `slot`.
    pub(super) fn start_pending(
        &self,
        slot: usize,
        generation: u64,
        calls: Vec<PendingCall>,
        tick: Option<Duration>,
    ) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        for call in calls {
            let me = self.me.clone();
            let services = self.shared.services.clone();
            handle.spawn(async move {
                let token = call.token;
                if call.grpc.is_some() {
                    let outcome = calls::perform_grpc(&services, call).await;
                    if let Some(plugin) = me.upgrade() {
                        let _ = plugin
                            .with_slot(slot, Some(generation), |i| i.grpc_outcome(token, outcome));
                    }
                    return;
                }
                let (response, status) = calls::perform(&services, call).await;
                if let Some(plugin) = me.upgrade() {
                    let _ = plugin.with_slot(slot, Some(generation), |i| {
                        i.http_call_response(token, response, status)
                    });
                }
            });
        }
        if let Some(period) = tick {
            let me = self.me.clone();
            let timer = handle.spawn(async move {
                if period.is_zero() {
                    return;
                }
                let mut interval = tokio::time::interval(period);
                interval.tick().await;
                loop {
                    interval.tick().await;
                    let Some(plugin) = me.upgrade() else { return };
                    // A later period (or a replaced instance) ends this timer.
                    if plugin
                        .with_slot(slot, Some(generation), |i| i.tick())
                        .is_err()
                    {
                        return;
                    }
                }
            });
            if let Some(old) = self.lock(slot).timer.replace(timer.abort_handle()) {
                old.abort();
            }
        }
    }
}
