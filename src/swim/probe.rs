//! The probe cycle: each period one member is pinged; without an ack within the probe
//! timeout, `k` other members are asked to ping it (ping-req) and to say so when they
//! cannot reach it either (Lifeguard's nacks); without any ack by the end of the period
//! the member is suspected. The outcome feeds the local health score.

use std::net::SocketAddr;
use std::time::Instant;

use std::collections::HashMap;

use super::timer::FixedState;
use super::{Swim, Timer};
use crate::wire::{Message, NodeId, State, Update};

/// The probe cycle's state: the probe in flight, the last sequence number, and the
/// indirect probes run for others.
#[derive(Debug, Default)]
pub(super) struct Prober {
    /// The probe of this period, if one is in flight.
    current: Option<Probe>,
    /// The last sequence number used (pings, ping-reqs and relays share it).
    seq: u32,
    /// Indirect probes this node runs on behalf of others, by the sequence it used.
    relays: HashMap<u32, Relay, FixedState>,
}

/// The probe in flight (at most one per period).
#[derive(Debug)]
pub(crate) struct Probe {
    seq: u32,
    target: NodeId,
    acked: bool,
    expected_nacks: u32,
    nacks: u32,
}

/// An indirect probe this node runs on behalf of another member.
#[derive(Debug)]
pub(crate) struct Relay {
    origin: NodeId,
    origin_addr: SocketAddr,
    origin_seq: u32,
    want_nack: bool,
    nack_sent: bool,
}

impl Prober {
    /// Drops the probe in flight (this node is leaving: no suspicion comes of it).
    pub(super) fn stop(&mut self) {
        self.current = None;
    }
}

impl Swim {
    fn next_seq(&mut self) -> u32 {
        self.prober.seq = self.prober.seq.wrapping_add(1);
        self.prober.seq
    }

    /// End of a probe period: judge the last probe, start the next one.
    pub(super) fn on_probe_timer(&mut self, now: Instant) {
        if let Some(p) = self.prober.current.take() {
            self.timers.cancel(Timer::ProbeTimeout);
            if !p.acked {
                self.probe_failed(now, &p);
            }
        }
        let period = self.awareness.scale(self.cfg.probe_interval);
        self.timers.set(Timer::Probe, now + period);
        let Some(t) = self.members.next_probe_target(self.me, &mut self.rng) else {
            return;
        };
        let (target, addr) = (t.id, t.addr);
        let seq = self.next_seq();
        // One span per probe round (its timeout and indirect probes log under their own).
        let _round = tracing::debug_span!("probe_round", target = target.0, seq).entered();
        // Buddy system: a suspect learns of its suspicion from the probe itself.
        let buddy = match t.suspect {
            Some(incarnation) if self.cfg.lifeguard => vec![Update::Suspect {
                id: target,
                incarnation,
                from: self.me,
            }],
            _ => Vec::new(),
        };
        let msg = self.with_gossip(buddy, |updates| Message::Ping {
            seq,
            target,
            updates,
        });
        self.send(addr, Some(target), false, &msg);
        self.stats.probes_sent += 1;
        self.prober.current = Some(Probe {
            seq,
            target,
            acked: false,
            expected_nacks: 0,
            nacks: 0,
        });
        let timeout = self.awareness.scale(self.cfg.probe_timeout);
        self.timers.set(Timer::ProbeTimeout, now + timeout);
    }

    fn probe_failed(&mut self, now: Instant, p: &Probe) {
        if self.cfg.lifeguard {
            // Missing nacks mean *we* could not hear our peers: we are the slow one.
            let delta = if p.expected_nacks > 0 {
                p.expected_nacks.saturating_sub(p.nacks)
            } else {
                1
            };
            self.awareness.apply(delta as i32);
        }
        let Some(m) = self.members.get(p.target) else {
            return;
        };
        // A member already suspected by others gets our independent confirmation,
        // which shortens its suspicion (Lifeguard).
        let (state, incarnation) = (m.state, m.incarnation);
        if state == State::Alive {
            self.stats.suspicions_raised += 1;
        }
        if matches!(state, State::Alive | State::Suspect) {
            self.on_suspect(now, p.target, incarnation, self.me);
        }
    }

    /// No direct ack in time: ask `k` members to probe the target.
    pub(super) fn on_probe_timeout(&mut self, _now: Instant) {
        let Some(p) = self.prober.current.as_ref().filter(|p| !p.acked) else {
            return;
        };
        let (seq, target) = (p.seq, p.target);
        let Some(addr) = self.members.get(target).map(|m| m.addr()) else {
            return;
        };
        let me = self.me;
        let helpers = self
            .members
            .pick(self.cfg.indirect_checks, &mut self.rng, |m| {
                m.id != me && m.id != target && m.state == State::Alive
            });
        let want_nack = self.cfg.lifeguard;
        for &h in &helpers {
            let msg = self.with_gossip(Vec::new(), |updates| Message::PingReq {
                seq,
                target,
                addr,
                want_nack,
                updates,
            });
            self.send_to_member(h, false, &msg);
        }
        if let Some(p) = self.prober.current.as_mut() {
            p.expected_nacks = if want_nack { helpers.len() as u32 } else { 0 };
        }
        if self.cfg.fallback_ping {
            // As memberlist's TCP fallback: a stream is retransmitted, so datagram loss
            // alone cannot make a live member look dead.
            let msg = Message::Ping {
                seq,
                target,
                updates: Vec::new(),
            };
            self.send(addr, Some(target), true, &msg);
        }
    }

    pub(super) fn on_ping(
        &mut self,
        _now: Instant,
        from: SocketAddr,
        sender: NodeId,
        seq: u32,
        target: NodeId,
        via_stream: bool,
    ) {
        if target != self.me {
            self.stats.misrouted += 1;
            return;
        }
        // A fallback ping came over a stream: answer the same way.
        let msg = self.with_gossip(Vec::new(), |updates| Message::Ack { seq, updates });
        self.send(from, Some(sender), via_stream, &msg);
    }

    pub(super) fn on_ack(&mut self, _now: Instant, seq: u32) {
        if let Some(p) = self
            .prober
            .current
            .as_mut()
            .filter(|p| p.seq == seq && !p.acked)
        {
            p.acked = true;
            self.stats.acks_received += 1;
            self.timers.cancel(Timer::ProbeTimeout);
            if self.cfg.lifeguard {
                self.awareness.apply(-1);
            }
            return;
        }
        if let Some(r) = self.prober.relays.remove(&seq) {
            self.timers.cancel(Timer::Relay(seq));
            let msg = Message::Ack {
                seq: r.origin_seq,
                updates: Vec::new(),
            };
            self.send(r.origin_addr, Some(r.origin), false, &msg);
        }
    }

    pub(super) fn on_nack(&mut self, seq: u32) {
        if let Some(p) = self.prober.current.as_mut().filter(|p| p.seq == seq) {
            p.nacks += 1;
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_ping_req(
        &mut self,
        now: Instant,
        from: SocketAddr,
        sender: NodeId,
        origin_seq: u32,
        target: NodeId,
        addr: SocketAddr,
        want_nack: bool,
    ) {
        if self.leaving || self.prober.relays.len() >= self.cfg.max_pending_indirect {
            self.stats.relays_refused += 1;
            return;
        }
        let seq = self.next_seq();
        let msg = Message::Ping {
            seq,
            target,
            updates: Vec::new(),
        };
        self.send(addr, Some(target), false, &msg);
        self.prober.relays.insert(
            seq,
            Relay {
                origin: sender,
                origin_addr: from,
                origin_seq,
                want_nack,
                nack_sent: false,
            },
        );
        // Nack at 80% of the probe timeout, so it reaches the origin before its period ends.
        let nack_at = now + self.cfg.probe_timeout.mul_f64(0.8);
        self.timers.set(Timer::Relay(seq), nack_at);
    }

    /// A relay's nack time (send the nack) or its expiry (forget it).
    pub(super) fn on_relay_timer(&mut self, now: Instant, seq: u32) {
        let Some(r) = self.prober.relays.get_mut(&seq) else {
            return;
        };
        if r.nack_sent {
            self.prober.relays.remove(&seq);
            return;
        }
        r.nack_sent = true;
        let (want, origin, addr, oseq) = (r.want_nack, r.origin, r.origin_addr, r.origin_seq);
        if want {
            self.send(addr, Some(origin), false, &Message::Nack { seq: oseq });
        }
        self.timers
            .set(Timer::Relay(seq), now + self.cfg.probe_interval);
    }
}
