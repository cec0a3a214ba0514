//! What plugins share across instances and plugins: shared data, shared queues, and the named
//! upstreams ("clusters") they may call.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Mutex;

use bytes::Bytes;

use super::abi::Status;
use super::host::QueueNotifier;

/// An upstream plugins may call with `proxy_http_call`, by name.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub address: SocketAddr,
}

/// Process-wide services, one per sidecar.
#[derive(Default)]
pub struct Services {
    pub shared: SharedData,
    pub queues: Queues,
    pub clusters: HashMap<String, Cluster>,
}

/// The shared key-value store with compare-and-swap.
/// (vm id, key) → (value, CAS).
type Entries = HashMap<(String, Vec<u8>), (Bytes, u32)>;

#[derive(Default)]
pub struct SharedData {
    entries: Mutex<Entries>,
    next_cas: Mutex<u32>,
}

impl SharedData {
    pub fn get(&self, vm: &str, key: &[u8]) -> Option<(Bytes, u32)> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(&(vm.to_owned(), key.to_vec())).cloned()
    }

    /// Stores `value`; with a non-zero `cas` only if it matches the stored one.
    pub fn set(&self, vm: &str, key: Vec<u8>, value: Vec<u8>, cas: u32) -> Result<(), Status> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let slot = (vm.to_owned(), key);
        if cas != 0 && entries.get(&slot).map(|(_, c)| *c) != Some(cas) {
            return Err(Status::CasMismatch);
        }
        let mut next = self.next_cas.lock().unwrap_or_else(|p| p.into_inner());
        *next = next.wrapping_add(1).max(1);
        entries.insert(slot, (Bytes::from(value), *next));
        Ok(())
    }
}

struct Queue {
    items: VecDeque<Bytes>,
    notify: Option<QueueNotifier>,
}

/// Shared queues, by (vm id, name); ids start at 1.
#[derive(Default)]
pub struct Queues {
    inner: Mutex<QueuesInner>,
}

#[derive(Default)]
struct QueuesInner {
    by_name: HashMap<(String, Vec<u8>), u32>,
    queues: HashMap<u32, Queue>,
}

impl Queues {
    /// Creates the queue, or re-opens it keeping its items; the caller becomes its reader.
    pub fn register(&self, vm: &str, name: Vec<u8>, notify: Option<QueueNotifier>) -> u32 {
        let mut q = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let next = q.queues.len() as u32 + 1;
        let id = *q.by_name.entry((vm.to_owned(), name)).or_insert(next);
        q.queues
            .entry(id)
            .or_insert_with(|| Queue {
                items: VecDeque::new(),
                notify: None,
            })
            .notify = notify;
        id
    }

    pub fn resolve(&self, vm: &str, name: &[u8]) -> Option<u32> {
        let q = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        q.by_name.get(&(vm.to_owned(), name.to_vec())).copied()
    }

    pub fn enqueue(&self, id: u32, value: Vec<u8>) -> Result<(), Status> {
        let notify = {
            let mut q = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let queue = q.queues.get_mut(&id).ok_or(Status::NotFound)?;
            queue.items.push_back(Bytes::from(value));
            queue.notify.clone()
        };
        // Notify outside the lock: the reader may dequeue right away.
        if let Some(notify) = notify {
            notify(id);
        }
        Ok(())
    }

    pub fn dequeue(&self, id: u32) -> Result<Bytes, Status> {
        let mut q = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let queue = q.queues.get_mut(&id).ok_or(Status::NotFound)?;
        queue.items.pop_front().ok_or(Status::Empty)
    }
}
