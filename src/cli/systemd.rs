//! The systemd service protocol for `ctdns serve` (`Type=notify`, see
//! `contrib/ctdns.service`): `READY=1` once the listeners are bound and privileges
//! dropped, `RELOADING=1` (with `MONOTONIC_USEC`) then `READY=1` around a reload,
//! `STOPPING=1` at shutdown, and `WATCHDOG=1` pings at half the interval systemd asks for
//! (`WatchdogSec=`, passed as `WATCHDOG_USEC`, for this process when `WATCHDOG_PID` is set).
//!
//! Every function is a no-op when `NOTIFY_SOCKET` is not set (ctdns not started by
//! systemd). A notification that cannot be sent is logged, never fatal.

use std::time::Duration;

use sd_notify::NotifyState;

fn send(what: &str, states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd ({what})");
    }
}

/// The service is up: listeners bound, privileges dropped, ready for queries; `status` is
/// shown by `systemctl status`.
pub fn ready(status: &str) {
    send(
        "READY=1",
        &[NotifyState::Ready, NotifyState::Status(status)],
    );
}

/// A reload starts (`RELOADING=1` and the current `CLOCK_MONOTONIC` time, as
/// `Type=notify-reload` in systemd 253 and later wants). Follow with [`ready`].
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send("RELOADING=1", &[NotifyState::Reloading, now]),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read CLOCK_MONOTONIC for MONOTONIC_USEC");
            send("RELOADING=1", &[NotifyState::Reloading]);
        }
    }
}

/// The service is shutting down.
pub fn stopping() {
    send("STOPPING=1", &[NotifyState::Stopping]);
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, when it is set for this
/// process; `None` when the watchdog is off.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
        .map(|timeout| (timeout / 2).max(Duration::from_millis(1)))
        .filter(|_| std::env::var_os("NOTIFY_SOCKET").is_some())
}

/// Starts a task on the current Tokio runtime that sends `WATCHDOG=1` every
/// [`watchdog_interval`], when the watchdog is on. The pings stop when the runtime stops
/// making progress, which is what the watchdog is for; abort the task at shutdown.
pub fn spawn_watchdog() -> Option<tokio::task::JoinHandle<()>> {
    let every = watchdog_interval()?;
    tracing::info!(
        interval_ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX),
        "systemd watchdog on"
    );
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            send("WATCHDOG=1", &[NotifyState::Watchdog]);
        }
    }))
}
