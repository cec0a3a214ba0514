//! WASI `poll_oneoff`: clock subscriptions sleep (Go's and TinyGo's runtimes sleep this way, and
//! Go prints a panic only after one), within the running callback's time cap; a sleep past the
//! cap ends the callback as a time-out. File descriptor subscriptions answer at once: stdout and
//! stderr are always writable, anything else is a bad descriptor.

use std::time::{Duration, Instant};

use wasmtime::{Caller, Trap};

use super::{EBADF, EFAULT, EINVAL, SUCCESS, clock_now};
use crate::wasm::abi::memory;
use crate::wasm::host::HostState;

/// `subscription_t` and `event_t` sizes (preview 1).
const SUBSCRIPTION: usize = 48;
const EVENT: usize = 32;

const CLOCK: u8 = 0;
const FD_READ: u8 = 1;
const FD_WRITE: u8 = 2;

/// `subscription_clock_abstime`: the timeout is a time on the clock, not a delay.
const ABSTIME: u16 = 1;

/// Most subscriptions one call may hold.
const MAX_SUBSCRIPTIONS: u32 = 64;

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// How long until a clock subscription fires (`None`: an unknown clock).
fn wait_of(sub: &[u8]) -> Option<Duration> {
    let id = u32::from_le_bytes([sub[16], sub[17], sub[18], sub[19]]);
    let timeout = le_u64(sub, 24);
    let flags = u16::from_le_bytes([sub[40], sub[41]]);
    if flags & ABSTIME == 0 {
        return Some(Duration::from_nanos(timeout));
    }
    let now = clock_now(id as i32)?;
    Some(Duration::from_nanos(timeout.saturating_sub(now)))
}

fn event(userdata: u64, error: u16, kind: u8) -> [u8; EVENT] {
    let mut e = [0u8; EVENT];
    e[0..8].copy_from_slice(&userdata.to_le_bytes());
    e[8..10].copy_from_slice(&error.to_le_bytes());
    e[10] = kind;
    e
}

pub fn poll_oneoff(
    mut c: Caller<'_, HostState>,
    subs: i32,
    events: i32,
    count: i32,
    ret: i32,
) -> wasmtime::Result<i32> {
    let n = count as u32;
    if n == 0 || n > MAX_SUBSCRIPTIONS {
        return Ok(EINVAL);
    }
    let Ok(all) = memory::read(&mut c, subs, (n as usize * SUBSCRIPTION) as i32) else {
        return Ok(EFAULT);
    };
    let mut out: Vec<[u8; EVENT]> = Vec::new();
    let mut clocks: Vec<(u64, Duration)> = Vec::new();
    for sub in all.chunks_exact(SUBSCRIPTION) {
        let userdata = le_u64(sub, 0);
        match sub[8] {
            CLOCK => match wait_of(sub) {
                Some(wait) => clocks.push((userdata, wait)),
                None => out.push(event(userdata, EINVAL as u16, CLOCK)),
            },
            kind @ (FD_READ | FD_WRITE) => {
                let fd = u32::from_le_bytes([sub[16], sub[17], sub[18], sub[19]]);
                let ready = kind == FD_WRITE && (fd == 1 || fd == 2);
                let error = if ready { SUCCESS } else { EBADF } as u16;
                out.push(event(userdata, error, kind));
            }
            _ => return Ok(EINVAL),
        }
    }
    // Something is ready now: no waiting.
    if out.is_empty() {
        let Some(wait) = clocks.iter().map(|(_, w)| *w).min() else {
            return Ok(EINVAL);
        };
        let deadline = c.data().deadline;
        let until = Instant::now() + wait;
        if let Some(deadline) = deadline.filter(|d| *d < until) {
            std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
            return Err(Trap::Interrupt.into());
        }
        std::thread::sleep(wait);
        out.extend(
            clocks
                .iter()
                .filter(|(_, w)| *w <= wait)
                .map(|(u, _)| event(*u, 0, CLOCK)),
        );
    }
    let bytes: Vec<u8> = out.iter().flatten().copied().collect();
    let r = memory::write(&mut c, events as u32, &bytes)
        .and_then(|()| memory::write_u32(&mut c, ret, out.len() as u32));
    Ok(if r.is_ok() { SUCCESS } else { EFAULT })
}
