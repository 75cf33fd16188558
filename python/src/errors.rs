//! The exception classes and how each Rust error maps to one. Every message is the Rust
//! error's `Display` text. The Rust enums are `#[non_exhaustive]`: a variant added later
//! maps to the closest base class.

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::PyErr;

use quorate::{
    CampaignError as RsCampaignError, GroupError as RsGroupError, GroupOpError, JoinError,
    LeaderQueryError as RsLeaderQueryError, LeadershipError, LeaveError, LockError as RsLockError,
    MetadataError as RsMetadataError, MetricsError, SetMetadataError, StartCampaignError,
    SyncError as RsSyncError,
};

pyo3::create_exception!(
    quorate,
    QuorateError,
    PyException,
    "Base class of every quorate error."
);
pyo3::create_exception!(
    quorate,
    StartError,
    QuorateError,
    "The node could not start: bad cluster directory or configuration, unusable identity, \
     address in use, unusable data directory."
);
pyo3::create_exception!(
    quorate,
    JoinTimeout,
    QuorateError,
    "The node did not hear back from the cluster within the time given (`Node.wait_joined`)."
);
pyo3::create_exception!(
    quorate,
    NodeStopped,
    QuorateError,
    "The node has left or stopped (or its task ended): nothing was done."
);
pyo3::create_exception!(
    quorate,
    GroupError,
    QuorateError,
    "A group operation was refused (tooz's cases); no group changed."
);
pyo3::create_exception!(
    quorate,
    BadGroupName,
    GroupError,
    "The group name is empty, too long (more than 128 bytes) or has control characters."
);
pyo3::create_exception!(
    quorate,
    GroupNotCreated,
    GroupError,
    "The group does not exist (tooz `GroupNotCreated`)."
);
pyo3::create_exception!(
    quorate,
    GroupAlreadyExists,
    GroupError,
    "The group exists already (tooz `GroupAlreadyExist`)."
);
pyo3::create_exception!(
    quorate,
    AlreadyJoined,
    GroupError,
    "This node is in the group already (tooz `MemberAlreadyExist`)."
);
pyo3::create_exception!(
    quorate,
    NotJoined,
    GroupError,
    "This node (or the member asked about) is not in the group (tooz `MemberNotJoined`)."
);
pyo3::create_exception!(
    quorate,
    GroupNotEmpty,
    GroupError,
    "The group still has members (tooz `GroupNotEmpty`)."
);
pyo3::create_exception!(
    quorate,
    TooManyGroups,
    GroupError,
    "The cluster or this node already holds the most groups allowed."
);
pyo3::create_exception!(
    quorate,
    GroupStateTooLarge,
    GroupError,
    "This node's group state would exceed the configured limit."
);
pyo3::create_exception!(
    quorate,
    CampaignError,
    QuorateError,
    "A campaign was refused (elections off, bad name, already running for the group, ...); \
     nothing changed."
);
pyo3::create_exception!(
    quorate,
    CampaignEnded,
    QuorateError,
    "The campaign ended (resigned, or the node stopped): this node does not lead the group."
);
pyo3::create_exception!(
    quorate,
    LeaderQueryError,
    QuorateError,
    "No quorum of voters confirmed the leader in time (or elections are off)."
);
pyo3::create_exception!(
    quorate,
    LockError,
    QuorateError,
    "A lock could not be taken."
);
pyo3::create_exception!(
    quorate,
    LockTimeout,
    LockError,
    "The lock was still held elsewhere when the wait ended; this node no longer waits for it."
);
pyo3::create_exception!(
    quorate,
    LockLost,
    LockError,
    "The lock was granted but its lease ended before this node could take it."
);
pyo3::create_exception!(quorate, LockRefused, LockError, "The node refused to run for the lock (elections off, bad name, this node already holds or awaits it).");
pyo3::create_exception!(
    quorate,
    SyncError,
    QuorateError,
    "The node could not catch up with the cluster's state in time (`Node.sync`)."
);
pyo3::create_exception!(
    quorate,
    MetadataError,
    QuorateError,
    "The metadata was refused (too large); the node keeps publishing its previous metadata."
);

/// Adds every exception class to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    macro_rules! add {
        ($($name:ident),* $(,)?) => {$( m.add(stringify!($name), py.get_type::<$name>())?; )*};
    }
    add!(
        QuorateError,
        StartError,
        JoinTimeout,
        NodeStopped,
        GroupError,
        BadGroupName,
        GroupNotCreated,
        GroupAlreadyExists,
        AlreadyJoined,
        NotJoined,
        GroupNotEmpty,
        TooManyGroups,
        GroupStateTooLarge,
        CampaignError,
        CampaignEnded,
        LeaderQueryError,
        LockError,
        LockTimeout,
        LockLost,
        LockRefused,
        SyncError,
        MetadataError,
    );
    Ok(())
}

/// `NodeStopped` with the Rust wording.
pub(crate) fn stopped() -> PyErr {
    NodeStopped::new_err("the node has stopped")
}

/// A refused group operation (or snapshot query).
pub(crate) fn group(e: RsGroupError) -> PyErr {
    let msg = e.to_string();
    match e {
        RsGroupError::BadName => BadGroupName::new_err(msg),
        RsGroupError::NotCreated(_) => GroupNotCreated::new_err(msg),
        RsGroupError::AlreadyExists(_) => GroupAlreadyExists::new_err(msg),
        RsGroupError::AlreadyJoined(_) => AlreadyJoined::new_err(msg),
        RsGroupError::NotJoined(_) => NotJoined::new_err(msg),
        RsGroupError::NotEmpty(_) => GroupNotEmpty::new_err(msg),
        RsGroupError::TooManyGroups => TooManyGroups::new_err(msg),
        RsGroupError::StateTooLarge { .. } => GroupStateTooLarge::new_err(msg),
        RsGroupError::Left => NodeStopped::new_err(msg),
        _ => GroupError::new_err(msg),
    }
}

/// A failed group operation.
pub(crate) fn group_op(e: GroupOpError) -> PyErr {
    match e {
        GroupOpError::Refused(e) => group(e),
        GroupOpError::Unconfirmed(RsSyncError::Stopped) => stopped(),
        e @ GroupOpError::Unconfirmed(_) => SyncError::new_err(e.to_string()),
        GroupOpError::Stopped => stopped(),
        e => GroupError::new_err(e.to_string()),
    }
}

/// A refused candidacy.
pub(crate) fn campaign(e: RsCampaignError) -> PyErr {
    let msg = e.to_string();
    match e {
        RsCampaignError::Left => NodeStopped::new_err(msg),
        RsCampaignError::BadName
        | RsCampaignError::AlreadyRunning(_)
        | RsCampaignError::TooManyGroups
        | RsCampaignError::Disabled
        | RsCampaignError::StateTooLarge => CampaignError::new_err(msg),
        _ => CampaignError::new_err(msg),
    }
}

/// A campaign that could not start.
pub(crate) fn start_campaign(e: StartCampaignError) -> PyErr {
    match e {
        StartCampaignError::Refused(e) => campaign(e),
        StartCampaignError::Stopped => stopped(),
        e => CampaignError::new_err(e.to_string()),
    }
}

/// A campaign that ended without a leadership.
pub(crate) fn leadership(e: LeadershipError) -> PyErr {
    CampaignEnded::new_err(e.to_string())
}

/// A confirmed-leader query without an answer.
pub(crate) fn leader_query(e: RsLeaderQueryError) -> PyErr {
    match e {
        RsLeaderQueryError::Query(e) => LeaderQueryError::new_err(e.to_string()),
        RsLeaderQueryError::Stopped => stopped(),
        e => LeaderQueryError::new_err(e.to_string()),
    }
}

/// A lock not taken.
pub(crate) fn lock(e: RsLockError) -> PyErr {
    let msg = e.to_string();
    match e {
        RsLockError::Timeout { .. } => LockTimeout::new_err(msg),
        RsLockError::Refused(RsCampaignError::Left) => NodeStopped::new_err(msg),
        RsLockError::Refused(_) => LockRefused::new_err(msg),
        RsLockError::Lost { .. } => LockLost::new_err(msg),
        RsLockError::Stopped => stopped(),
        _ => LockError::new_err(msg),
    }
}

/// Refused metadata.
pub(crate) fn set_metadata(e: SetMetadataError) -> PyErr {
    match e {
        SetMetadataError::Refused(RsMetadataError::Left) => stopped(),
        SetMetadataError::Refused(e) => MetadataError::new_err(e.to_string()),
        SetMetadataError::Stopped => stopped(),
        e => MetadataError::new_err(e.to_string()),
    }
}

/// Metrics of a stopped node.
pub(crate) fn metrics(e: MetricsError) -> PyErr {
    match e {
        MetricsError::Stopped => stopped(),
        e => QuorateError::new_err(e.to_string()),
    }
}

/// A node that did not hear back from its seeds.
pub(crate) fn join(e: JoinError) -> PyErr {
    match e {
        JoinError::Timeout { .. } => JoinTimeout::new_err(e.to_string()),
        JoinError::Stopped => stopped(),
        e => QuorateError::new_err(e.to_string()),
    }
}

/// A synchronisation with the voters that did not complete.
pub(crate) fn sync(e: RsSyncError) -> PyErr {
    match e {
        RsSyncError::Stopped => stopped(),
        e => SyncError::new_err(e.to_string()),
    }
}

/// A departure that could not be announced.
pub(crate) fn leave(e: LeaveError) -> PyErr {
    match e {
        LeaveError::Stopped => stopped(),
        e => QuorateError::new_err(e.to_string()),
    }
}

/// A node that could not start, or a cluster directory that cannot be used: the whole
/// chain of causes, as the `quorate` command prints it.
pub(crate) fn start(e: &anyhow::Error) -> PyErr {
    StartError::new_err(format!("{e:#}"))
}
