//! A voter's [`Verdict`] to and from the form it travels in ([`WireVerdict`]): the
//! election converts, the wire layer knows nothing of verdicts.

use super::voter::{Denial, Verdict};
use crate::wire::election::WireVerdict;

impl From<Verdict> for WireVerdict {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Granted { lease, .. } => WireVerdict::Granted(lease),
            Verdict::Denied(Denial::Held {
                holder,
                term,
                remaining,
            }) => WireVerdict::Held(holder, term, remaining),
            Verdict::Denied(Denial::StaleTerm { highest }) => WireVerdict::StaleTerm(highest),
            Verdict::Denied(Denial::Quarantine { remaining }) => WireVerdict::Quarantine(remaining),
            Verdict::Denied(Denial::TooManyGroups) => WireVerdict::TooManyGroups,
        }
    }
}

impl From<WireVerdict> for Verdict {
    fn from(v: WireVerdict) -> Self {
        match v {
            WireVerdict::Granted(lease) => Verdict::Granted {
                lease,
                raised: false,
            },
            WireVerdict::Held(holder, term, remaining) => Verdict::Denied(Denial::Held {
                holder,
                term,
                remaining,
            }),
            WireVerdict::StaleTerm(highest) => Verdict::Denied(Denial::StaleTerm { highest }),
            WireVerdict::Quarantine(remaining) => Verdict::Denied(Denial::Quarantine { remaining }),
            WireVerdict::TooManyGroups => Verdict::Denied(Denial::TooManyGroups),
        }
    }
}
