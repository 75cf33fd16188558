//! Certificate validity at run time: a warning ahead of this node's own certificate's
//! expiry, and a clear reason when a handshake fails over a certificate (a peer's
//! expired, revoked or foreign certificate, or this node's refused by the peer).
//!
//! TLS itself refuses an expired certificate (rustls checks the validity of every
//! certificate in every handshake, both ways). What this module adds is what an
//! operator needs to act: the node names the problem at `warn` level, once per peer
//! and reason a minute, and a node that cannot join names it in
//! [`JoinError::Timeout`](crate::JoinError::Timeout).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use quinn::{ConnectionError, TransportErrorCode};

use super::identity::utc;

/// How often the expiry warning repeats while the certificate is within its warning
/// window: once an hour.
const WARN_EVERY: Duration = Duration::from_secs(3600);

/// Peers whose last refusal is remembered; beyond it the oldest half is forgotten.
const MAX_REFUSALS: usize = 1024;

/// How long a refusal reason stays quiet after it was logged for a peer.
const REFUSAL_QUIET: Duration = Duration::from_secs(60);

/// This node's own certificate's end, and when to warn about it next.
#[derive(Debug)]
pub(crate) struct OwnExpiry {
    /// Unix seconds at which the certificate expires.
    not_after: AtomicU64,
    /// How long ahead of the expiry warnings begin.
    warn_before: Duration,
    /// The next warning's time (`None`: at the next check).
    next_warning: Mutex<Option<Instant>>,
}

impl OwnExpiry {
    pub fn new(not_after: SystemTime, warn_before: Duration) -> Self {
        OwnExpiry {
            not_after: AtomicU64::new(unix_secs(not_after)),
            warn_before,
            next_warning: Mutex::new(None),
        }
    }

    /// A renewed certificate was loaded: its end, and warnings re-armed.
    pub fn set(&self, not_after: SystemTime) {
        self.not_after.store(unix_secs(not_after), Ordering::Relaxed);
        *self.next_warning.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Unix seconds at which the certificate expires (the metrics' gauge).
    pub fn not_after_unix(&self) -> u64 {
        self.not_after.load(Ordering::Relaxed)
    }

    /// Logs a warning when the certificate is within `warn_before` of its end (or
    /// past it) and the last warning is an hour old. Returns whether it warned.
    pub fn check(&self, wall: SystemTime, now: Instant) -> bool {
        let not_after = UNIX_EPOCH + Duration::from_secs(self.not_after_unix());
        if wall + self.warn_before < not_after {
            return false;
        }
        let mut next = self.next_warning.lock().unwrap_or_else(|e| e.into_inner());
        if next.is_some_and(|t| now < t) {
            return false;
        }
        *next = Some(now + WARN_EVERY);
        match not_after.duration_since(wall) {
            Ok(left) => tracing::warn!(
                expires = %utc(not_after),
                hours_left = left.as_secs() / 3600,
                "this node's certificate expires soon: renew it (quorate cert renew) and \
                 reload it (SIGHUP, Node::reload_identity), or peers refuse this node"
            ),
            Err(_) => tracing::warn!(
                expired = %utc(not_after),
                "this node's certificate has expired: peers refuse new connections from \
                 it; renew it (quorate cert renew) and reload it (SIGHUP)"
            ),
        }
        true
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Why a handshake failed over a certificate, as an operator reads it; `None` when
/// it failed for another reason (timeout, unreachable, ...).
pub(crate) fn certificate_refusal(e: &ConnectionError) -> Option<String> {
    match e {
        // This end's verifier refused the peer's certificate; rustls says why.
        ConnectionError::TransportError(t) if is_crypto(t.code) => {
            Some(format!("refused the peer's certificate: {}", t.reason))
        }
        // The peer's verifier refused this node's certificate: the alert says why.
        ConnectionError::ConnectionClosed(c) if is_crypto(c.error_code) => {
            let alert = u64::from(c.error_code) & 0xff;
            Some(format!("the peer refused this node's certificate: {}", alert_name(alert)))
        }
        // The peer found this node's certificate on its revocation list only once the
        // handshake was done (it began before the list was in force).
        ConnectionError::ApplicationClosed(c) if c.error_code == super::conn::code::REVOKED => {
            Some("the peer refused this node's certificate: certificate revoked".into())
        }
        _ => None,
    }
}

fn is_crypto(code: TransportErrorCode) -> bool {
    (0x100..0x200).contains(&u64::from(code))
}

/// The TLS alerts a certificate check sends (RFC 8446 §6.2).
fn alert_name(alert: u64) -> String {
    match alert {
        42 => "bad certificate".into(),
        43 => "unsupported certificate".into(),
        44 => "certificate revoked".into(),
        45 => "certificate expired (or not yet valid)".into(),
        46 => "certificate unknown".into(),
        48 => "unknown CA (a certificate of another cluster?)".into(),
        116 => "certificate required".into(),
        other => format!("TLS alert {other}"),
    }
}

/// The last certificate refusal per peer address: logged once a minute per reason,
/// and named when a join times out.
#[derive(Debug, Default)]
pub(crate) struct Refusals {
    last: Mutex<HashMap<SocketAddr, (String, Instant)>>,
}

impl Refusals {
    /// Records a refusal of (or by) `peer`; logs it unless the same reason was logged
    /// for that peer within the last minute.
    pub fn record(&self, peer: SocketAddr, reason: String, now: Instant) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((said, at)) = last.get(&peer) {
            if *said == reason && now.saturating_duration_since(*at) < REFUSAL_QUIET {
                return;
            }
        }
        tracing::warn!(%peer, "handshake failed: {reason}");
        if last.len() >= MAX_REFUSALS && !last.contains_key(&peer) {
            forget_oldest_half(&mut last);
        }
        last.insert(peer, (reason, now));
    }

    /// A connection with `peer` came up: its refusal is over.
    pub fn clear(&self, peer: SocketAddr) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.remove(&peer);
    }

    /// The last refusal reason of each of `peers` that has one.
    pub fn of(&self, peers: &[SocketAddr]) -> Vec<(SocketAddr, String)> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        peers
            .iter()
            .filter_map(|p| last.get(p).map(|(r, _)| (*p, r.clone())))
            .collect()
    }
}

fn forget_oldest_half(last: &mut HashMap<SocketAddr, (String, Instant)>) {
    let mut times: Vec<Instant> = last.values().map(|(_, t)| *t).collect();
    times.sort_unstable();
    let cut = times[times.len() / 2];
    last.retain(|_, (_, t)| *t > cut);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expiry_warning_starts_in_its_window_and_repeats_hourly() {
        let wall = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let now = Instant::now();
        let day = Duration::from_secs(24 * 3600);
        let e = OwnExpiry::new(wall + 40 * day, 30 * day);
        assert!(!e.check(wall, now), "40 days left, 30 days window");
        assert!(e.check(wall + 11 * day, now));
        assert!(!e.check(wall + 11 * day, now + Duration::from_secs(60)));
        assert!(e.check(wall + 11 * day, now + WARN_EVERY));
        // A renewed certificate ends the warnings.
        e.set(wall + 400 * day);
        assert!(!e.check(wall + 11 * day, now + WARN_EVERY * 2));
        assert_eq!(e.not_after_unix(), 1_800_000_000 + 400 * 24 * 3600);
    }

    #[test]
    fn refusals_are_bounded_and_cleared() {
        let r = Refusals::default();
        let now = Instant::now();
        let addr = |i: u16| SocketAddr::from(([127, 0, 0, 1], i));
        for i in 0..(MAX_REFUSALS as u16 + 10) {
            r.record(addr(i), "expired".into(), now + Duration::from_millis(i.into()));
        }
        assert!(r.last.lock().unwrap().len() <= MAX_REFUSALS);
        let last = addr(MAX_REFUSALS as u16 + 9);
        assert_eq!(r.of(&[last]), vec![(last, "expired".to_owned())]);
        r.clear(last);
        assert!(r.of(&[last]).is_empty());
    }

    #[test]
    fn alerts_name_the_certificate_problem() {
        assert!(alert_name(45).contains("expired"));
        assert!(alert_name(44).contains("revoked"));
        assert!(alert_name(48).contains("another cluster"));
    }
}
