//! The epoch ticker: advances the engine's epoch every [`EPOCH_TICK`] while plugin code may be
//! running, so that hook time caps fire, and sleeps when none has run for longer than any
//! callback may last, so an idle sidecar does not wake a thousand times a second.
//!
//! A callback marks the ticker active as it starts ([`Ticker::enter`]): a relaxed load of a
//! flag the ticker clears once per tick, and a store (with a wake-up if the ticker sleeps) only
//! when it was clear. The ticker counts ticks since it last saw the flag set; once that count
//! passes the longest deadline any callback was given ([`Ticker::allow`]), every callback that
//! started before has met its deadline, and the ticker sleeps until the next one starts.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::engine::EPOCH_TICK;

/// How often a sleeping ticker looks whether its engine is gone (so its thread ends).
const SLEEP_CHECK: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Ticker {
    /// Set by a callback as it starts; cleared by the ticker every tick.
    active: AtomicBool,
    /// The ticker sleeps (or is about to): a starting callback wakes it.
    sleeping: AtomicBool,
    /// The longest deadline, in ticks, any callback was given.
    longest: AtomicU64,
    /// Ticks so far (for tests and the curious).
    ticks: AtomicU64,
    lock: Mutex<()>,
    wake: Condvar,
}

impl Ticker {
    /// Starts the ticker thread for `engine`; it ends once the engine is dropped.
    pub fn spawn(engine: &wasmtime::Engine) -> Arc<Self> {
        let ticker = Arc::new(Self::default());
        let weak = engine.weak();
        let me = ticker.clone();
        let spawned = std::thread::Builder::new()
            .name("proxlet-epoch".into())
            .spawn(move || me.run(&weak));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the epoch ticker: hook time caps will not fire");
        }
        ticker
    }

    /// Records that callbacks may be given deadlines of up to `ticks` ticks.
    pub fn allow(&self, ticks: u64) {
        self.longest.fetch_max(ticks, Ordering::Relaxed);
    }

    /// How many times the epoch advanced.
    pub fn ticks(&self) -> u64 {
        self.ticks.load(Ordering::Relaxed)
    }

    /// Whether the ticker sleeps (no callback ran for longer than any deadline).
    pub fn asleep(&self) -> bool {
        self.sleeping.load(Ordering::SeqCst)
    }

    /// Called as plugin code starts to run: keeps (or gets) the epoch advancing.
    #[inline]
    pub fn enter(&self) {
        if !self.active.load(Ordering::Relaxed) {
            self.activate();
        }
    }

    #[cold]
    fn activate(&self) {
        // Sequentially consistent with the ticker's `sleeping` store and `active` load: either
        // the ticker sees this callback before it sleeps, or this sees it sleeping and wakes it.
        self.active.store(true, Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) {
            let _held = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            self.wake.notify_one();
        }
    }

    fn run(&self, weak: &wasmtime::EngineWeak) {
        let mut quiet: u64 = 0;
        loop {
            let Some(engine) = weak.upgrade() else { return };
            engine.increment_epoch();
            drop(engine);
            self.ticks.fetch_add(1, Ordering::Relaxed);
            if self.active.swap(false, Ordering::Relaxed) {
                quiet = 0;
            } else {
                quiet += 1;
            }
            // Every callback that started before the flag was last seen has had `longest`
            // ticks since: it returned or met its deadline.
            if quiet > self.longest.load(Ordering::Relaxed) {
                while !self.sleep() {
                    if weak.upgrade().is_none() {
                        return;
                    }
                }
                quiet = 0;
                continue;
            }
            std::thread::sleep(EPOCH_TICK);
        }
    }

    /// Sleeps until a callback starts (true) or for [`SLEEP_CHECK`] (false).
    fn sleep(&self) -> bool {
        let held = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.sleeping.store(true, Ordering::SeqCst);
        let (held, _) = self
            .wake
            .wait_timeout_while(held, SLEEP_CHECK, |_| !self.active.load(Ordering::SeqCst))
            .unwrap_or_else(|p| p.into_inner());
        self.sleeping.store(false, Ordering::SeqCst);
        drop(held);
        self.active.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(std::time::Instant::now() < until, "{what} within 5 s");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn sleeps_when_idle_and_wakes_when_code_runs() {
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let engine = wasmtime::Engine::new(&config).expect("engine");
        let ticker = Ticker::spawn(&engine);
        ticker.allow(20);
        ticker.enter();
        wait_until("ticking", || ticker.ticks() >= 5);
        // No callback for 20 ticks: asleep, and the epoch stands still.
        wait_until("asleep", || ticker.asleep());
        let asleep_at = ticker.ticks();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(ticker.ticks(), asleep_at, "ticked while asleep");
        // A callback starts: ticking again, for at least the longest deadline.
        ticker.enter();
        wait_until("awake", || ticker.ticks() >= asleep_at + 20);
        // Once the engine is gone, the thread ends (and lets go of the ticker).
        drop(engine);
        wait_until("the thread ended", || Arc::strong_count(&ticker) == 1);
    }
}
