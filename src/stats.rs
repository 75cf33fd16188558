//! The counters a node keeps of what it dropped or refused, and what it sent: every
//! layer counts its own part, and [`crate::Engine::stats`] adds them up.

/// Counters of what the engine dropped or refused, and what it sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Frames that failed to decode (malformed or oversized).
    pub malformed: u64,
    /// Frames of another cluster or protocol version.
    pub foreign: u64,
    /// Frames whose claimed sender differs from the authenticated peer.
    pub impersonation: u64,
    /// Pings meant for another node (a reused address).
    pub misrouted: u64,
    /// New members refused because the table was full.
    pub table_full: u64,
    /// Indirect probe requests refused because too many were running.
    pub relays_refused: u64,
    /// Events dropped because the application did not poll them in time.
    pub events_dropped: u64,
    /// Messages that could not be encoded within their limit.
    pub encode_failed: u64,
    /// Frames and bytes handed out to send.
    pub frames_out: u64,
    /// Bytes handed out to send.
    pub bytes_out: u64,
    /// Frames received and decoded.
    pub frames_in: u64,
    /// Gossip updates dropped because the broadcast queue was full.
    pub broadcasts_dropped: u64,
    /// Suspicions this node raised after a failed probe.
    pub suspicions_raised: u64,
    /// Times this node refuted a suspicion or death about itself.
    pub refutations: u64,
    /// Early full-state exchanges: gossip had grown the member table by a quarter
    /// since the last one (a mass join or a healed partition).
    pub catch_ups: u64,
    /// Anti-entropy exchanges a peer started whose summary matched our table: no
    /// record needed to travel.
    pub syncs_in_agreement: u64,
    /// Times news said this node's own id was alive at another address (a restart
    /// elsewhere seen once, or another live process with this id again and again).
    pub claims_elsewhere: u64,
    /// Election messages meant for another process with this node's id, dropped.
    pub election_misrouted: u64,
}
