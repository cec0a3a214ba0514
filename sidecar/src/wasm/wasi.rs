//! The WASI (preview 1) a plugin gets: clocks, randomness, its configured environment, and
//! stdout/stderr into its log. No filesystem (no preopened directories), no sockets, no
//! arguments, no inherited environment. Any other WASI import the module declares is linked to
//! a stub answering `ENOSYS`, so modules built for a full WASI still load.
//!
//! The same functions are registered under `wasi_snapshot_preview1` and the older
//! `wasi_unstable` (the AssemblyScript SDK imports `proc_exit` from there).

mod poll;

use std::time::{Instant, SystemTime};

use wasmtime::{Caller, Linker, Module, Val};

use super::abi::memory;
use super::host::HostState;
use super::logs::Level;

pub const MODULES: [&str; 2] = ["wasi_snapshot_preview1", "wasi_unstable"];

const SUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EFAULT: i32 = 21;
const EINVAL: i32 = 28;
const ENOSYS: i32 = 52;

/// `proc_exit` ends the instance with this error.
#[derive(Debug, thiserror::Error)]
#[error("plugin exited with code {0}")]
pub struct Exit(pub i32);

fn fault(r: Result<(), super::abi::Status>) -> i32 {
    if r.is_ok() { SUCCESS } else { EFAULT }
}

/// Process start, for the monotonic clock.
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds on WASI clock `id`: 0 the real-time clock, 1 the monotonic one (`None`: another).
fn clock_now(id: i32) -> Option<u64> {
    match id {
        0 => Some(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        ),
        1 => Some(epoch().elapsed().as_nanos() as u64),
        _ => None,
    }
}

pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    for m in MODULES {
        add_module(linker, m)?;
    }
    Ok(())
}

fn add_module(linker: &mut Linker<HostState>, m: &str) -> wasmtime::Result<()> {
    linker.func_wrap(
        m,
        "args_sizes_get",
        |mut c: Caller<'_, HostState>, argc: i32, size: i32| {
            fault(
                memory::write_u32(&mut c, argc, 0)
                    .and_then(|()| memory::write_u32(&mut c, size, 0)),
            )
        },
    )?;
    linker.func_wrap(m, "args_get", |_: Caller<'_, HostState>, _: i32, _: i32| {
        SUCCESS
    })?;
    linker.func_wrap(
        m,
        "environ_sizes_get",
        |mut c: Caller<'_, HostState>, count: i32, size: i32| {
            let env = &c.data().plugin.env;
            let n = env.len() as u32;
            let bytes: usize = env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
            fault(
                memory::write_u32(&mut c, count, n)
                    .and_then(|()| memory::write_u32(&mut c, size, bytes as u32)),
            )
        },
    )?;
    linker.func_wrap(
        m,
        "environ_get",
        |mut c: Caller<'_, HostState>, ptrs: i32, buf: i32| {
            let env = c.data().plugin.env.clone();
            let mut at = buf as u32;
            for (i, (k, v)) in env.iter().enumerate() {
                let entry = format!("{k}={v}\0");
                let r = memory::write(&mut c, at, entry.as_bytes())
                    .and_then(|()| memory::write_u32(&mut c, ptrs + 4 * i as i32, at));
                if r.is_err() {
                    return EFAULT;
                }
                at += entry.len() as u32;
            }
            SUCCESS
        },
    )?;
    linker.func_wrap(
        m,
        "clock_res_get",
        |mut c: Caller<'_, HostState>, _id: i32, ret: i32| {
            fault(memory::write_u64(&mut c, ret, 1_000))
        },
    )?;
    linker.func_wrap(
        m,
        "clock_time_get",
        |mut c: Caller<'_, HostState>, id: i32, _precision: i64, ret: i32| match clock_now(id) {
            Some(now) => fault(memory::write_u64(&mut c, ret, now)),
            None => EINVAL,
        },
    )?;
    linker.func_wrap(
        m,
        "random_get",
        |mut c: Caller<'_, HostState>, buf: i32, len: i32| {
            let len = len as u32 as usize;
            if len > 64 * 1024 {
                return EINVAL;
            }
            let mut bytes = vec![0u8; len];
            if getrandom::fill(&mut bytes).is_err() {
                return ENOSYS;
            }
            fault(memory::write(&mut c, buf as u32, &bytes))
        },
    )?;
    linker.func_wrap(
        m,
        "fd_write",
        |mut c: Caller<'_, HostState>, fd: i32, iovs: i32, iovs_len: i32, ret: i32| {
            let level = match fd {
                1 => Level::Info,
                2 => Level::Error,
                _ => return EBADF,
            };
            let mut text = Vec::new();
            for i in 0..iovs_len as u32 {
                let Ok(iov) = memory::read(&mut c, iovs + 8 * i as i32, 8) else {
                    return EFAULT;
                };
                let ptr = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
                let len = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
                match memory::read(&mut c, ptr, len) {
                    Ok(b) => text.extend_from_slice(&b),
                    Err(_) => return EFAULT,
                }
            }
            let written = text.len() as u32;
            // Plugins write a line in pieces (Rust's panic and allocation-failure messages
            // do): log whole lines only, keeping the rest for the next write.
            let pending = &mut c.data_mut().output[usize::from(level == Level::Error)];
            pending.extend_from_slice(&text);
            let mut lines = Vec::new();
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                lines.push(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
            }
            if pending.len() > 4096 {
                lines.push(String::from_utf8_lossy(pending).into_owned());
                pending.clear();
            }
            for line in lines.into_iter().filter(|l| !l.is_empty()) {
                c.data_mut().log(level, line);
            }
            fault(memory::write_u32(&mut c, ret, written))
        },
    )?;
    linker.func_wrap(
        m,
        "fd_read",
        |_: Caller<'_, HostState>, _: i32, _: i32, _: i32, _: i32| EBADF,
    )?;
    linker.func_wrap(m, "fd_close", |_: Caller<'_, HostState>, fd: i32| {
        if (0..=2).contains(&fd) {
            SUCCESS
        } else {
            EBADF
        }
    })?;
    linker.func_wrap(
        m,
        "fd_prestat_get",
        |_: Caller<'_, HostState>, _: i32, _: i32| EBADF,
    )?;
    linker.func_wrap(
        m,
        "fd_prestat_dir_name",
        |_: Caller<'_, HostState>, _: i32, _: i32, _: i32| EBADF,
    )?;
    linker.func_wrap(
        m,
        "fd_fdstat_get",
        |mut c: Caller<'_, HostState>, fd: i32, ret: i32| {
            if !(0..=2).contains(&fd) {
                return EBADF;
            }
            // filetype 2 (character device), no flags, rights: fd_write (bit 6) or fd_read (bit 1).
            let rights: u64 = if fd == 0 { 1 << 1 } else { 1 << 6 };
            let mut stat = [0u8; 24];
            stat[0] = 2;
            stat[8..16].copy_from_slice(&rights.to_le_bytes());
            fault(memory::write(&mut c, ret as u32, &stat))
        },
    )?;
    linker.func_wrap(
        m,
        "fd_fdstat_set_flags",
        |_: Caller<'_, HostState>, fd: i32, _: i32| {
            if (0..=2).contains(&fd) {
                SUCCESS
            } else {
                EBADF
            }
        },
    )?;
    linker.func_wrap(m, "sched_yield", |_: Caller<'_, HostState>| SUCCESS)?;
    linker.func_wrap(m, "poll_oneoff", poll::poll_oneoff)?;
    linker.func_wrap(
        m,
        "proc_exit",
        |mut c: Caller<'_, HostState>, code: i32| -> wasmtime::Result<()> {
            c.data_mut().exit_code = Some(code);
            Err(wasmtime::Error::new(Exit(code)))
        },
    )?;
    Ok(())
}

/// The WASI functions implemented above, with their signatures (`params:results`, `i`/`I` for
/// i32/i64).
const IMPLEMENTED: &[(&str, &str)] = &[
    ("args_sizes_get", "ii:i"),
    ("args_get", "ii:i"),
    ("environ_sizes_get", "ii:i"),
    ("environ_get", "ii:i"),
    ("clock_res_get", "ii:i"),
    ("clock_time_get", "iIi:i"),
    ("random_get", "ii:i"),
    ("fd_write", "iiii:i"),
    ("fd_read", "iiii:i"),
    ("fd_close", "i:i"),
    ("fd_prestat_get", "ii:i"),
    ("fd_prestat_dir_name", "iii:i"),
    ("fd_fdstat_get", "ii:i"),
    ("fd_fdstat_set_flags", "ii:i"),
    ("sched_yield", ":i"),
    ("poll_oneoff", "iiii:i"),
    ("proc_exit", "i:"),
];

fn signature(ty: &wasmtime::FuncType) -> String {
    let code = |t: wasmtime::ValType| match t {
        wasmtime::ValType::I32 => 'i',
        wasmtime::ValType::I64 => 'I',
        wasmtime::ValType::F32 => 'f',
        wasmtime::ValType::F64 => 'F',
        _ => '?',
    };
    let params: String = ty.params().map(code).collect();
    let results: String = ty.results().map(code).collect();
    format!("{params}:{results}")
}

/// Links every WASI import of `module` the host does not implement (or implements with another
/// signature) to a stub returning `ENOSYS`.
pub fn stub_missing(linker: &mut Linker<HostState>, module: &Module) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    for import in module.imports() {
        if !MODULES.contains(&import.module()) {
            continue;
        }
        let Some(want) = import.ty().func().cloned() else {
            continue;
        };
        let sig = signature(&want);
        if IMPLEMENTED.contains(&(import.name(), sig.as_str())) {
            continue;
        }
        let results: Vec<wasmtime::ValType> = want.results().collect();
        let name = import.name().to_owned();
        linker.func_new(
            import.module(),
            import.name(),
            want,
            move |_c, _args, out| {
                tracing::trace!(call = %name, "WASI call the sandbox does not provide: ENOSYS");
                for (slot, ty) in out.iter_mut().zip(&results) {
                    *slot = match ty {
                        wasmtime::ValType::I64 => Val::I64(i64::from(ENOSYS)),
                        _ => Val::I32(ENOSYS),
                    };
                }
                Ok(())
            },
        )?;
    }
    linker.allow_shadowing(false);
    Ok(())
}
