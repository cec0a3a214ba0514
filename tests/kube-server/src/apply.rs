//! Server-side apply: field ownership per manager (`metadata.managedFields`), the merge of an
//! applied configuration into the live object, conflicts, and the removal of fields a manager
//! stopped applying. Also the ownership bookkeeping of ordinary writes (operation `Update`).

pub mod fieldset;
pub mod managed;
pub mod ssa;

pub use managed::track_update;
pub use ssa::{ApplyRequest, server_side_apply};

/// Which part of an object a write may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The whole object except what the server owns; `status` excluded when it has its own
    /// subresource.
    Main { status_separate: bool },
    /// Only `status` (the `/status` subresource).
    Status,
}

impl Scope {
    pub fn subresource(self) -> &'static str {
        match self {
            Scope::Main { .. } => "",
            Scope::Status => "status",
        }
    }
}
