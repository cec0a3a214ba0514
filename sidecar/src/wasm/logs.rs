//! Plugin logs: every line a plugin writes (`proxy_log`, WASI stdout/stderr, its panic
//! message) goes to a bounded ring buffer served by the admin API, whatever the proxy's own log
//! level, and to the proxy's log at the matching level.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::SystemTime;

/// `proxy_log_level_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

impl Level {
    pub fn from_abi(v: i32) -> Option<Self> {
        Some(match v {
            0 => Self::Trace,
            1 => Self::Debug,
            2 => Self::Info,
            3 => Self::Warn,
            4 => Self::Error,
            5 => Self::Critical,
            _ => return None,
        })
    }
}

/// One logged line.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Line {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    pub level: Level,
    pub message: String,
}

/// The most recent lines of one plugin.
#[derive(Debug)]
pub struct LogRing {
    lines: Mutex<VecDeque<Line>>,
    capacity: usize,
}

impl LogRing {
    pub fn new(capacity: usize) -> Self {
        Self {
            lines: Mutex::new(VecDeque::with_capacity(capacity.min(64))),
            capacity,
        }
    }

    pub fn push(&self, plugin: &str, level: Level, message: String) {
        match level {
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error | Level::Critical => tracing::error!(plugin, "{message}"),
        }
        let time_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if lines.len() == self.capacity {
            lines.pop_front();
        }
        lines.push_back(Line {
            time_ms,
            level,
            message,
        });
    }

    /// The lines, oldest first.
    pub fn snapshot(&self) -> Vec<Line> {
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        lines.iter().cloned().collect()
    }
}
