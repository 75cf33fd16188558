//! Read-your-writes barriers: a full-state exchange with a chosen member, answered
//! only after the receiver merged what it got ([`crate::wire::Message::Barrier`]).
//! The engine sends one to every voter and counts the answers; membership only
//! exchanges the tables and reports who answered which barrier.

use std::net::SocketAddr;
use std::time::Instant;

use super::Swim;
use crate::wire::{MemberRecord, Message, NodeId};

impl Swim {
    /// Sends barrier `id` to member `peer` at `to`: this node's whole table, on a
    /// stream.
    pub fn send_barrier(&mut self, to: SocketAddr, peer: NodeId, id: u32) {
        let msg = self.barrier_msg(id, false);
        self.send(to, Some(peer), true, &msg);
    }

    /// The barrier answers received since the last call: `(barrier, member)`.
    pub fn poll_barrier_answer(&mut self) -> Option<(u32, NodeId)> {
        self.exchange.answered.pop_front()
    }

    fn barrier_msg(&self, id: u32, reply: bool) -> Message {
        let members = self.members.iter().map(|m| m.record()).collect();
        Message::Barrier {
            id,
            reply,
            members: self.table_records(members),
            shared: self.exchange.shared_out.clone(),
        }
    }

    /// A barrier from `sender`: merge first, then answer (a question) or report (an
    /// answer). At most `MAX_ANSWERS` answers wait for the engine; older ones are
    /// dropped, and their barrier times out.
    pub(super) fn on_barrier(
        &mut self,
        now: Instant,
        from: SocketAddr,
        sender: NodeId,
        id: u32,
        reply: bool,
        members: Vec<MemberRecord>,
    ) {
        self.merge_records(now, sender, members);
        if reply {
            if self.exchange.answered.len() >= MAX_ANSWERS {
                self.exchange.answered.pop_front();
            }
            self.exchange.answered.push_back((id, sender));
        } else {
            let msg = self.barrier_msg(id, true);
            self.send(from, Some(sender), true, &msg);
        }
    }
}

/// Most barrier answers kept for the engine between two polls.
const MAX_ANSWERS: usize = 256;
