//! Applying a revocation list on a running node, and passing it on.
//!
//! A list given to a node by its application or by a client (`quorate revoke`) is
//! checked, installed (new TLS configurations that refuse the revoked certificates,
//! connections with them closed), kept in the data directory, and sent to every live
//! member, again and again (with backoff) to a member that does not take it, for as
//! long as that member is live. A list received from a member is installed the same way
//! but not sent on from there: the node it came from sends it to all. Every node also
//! offers its list on each new connection with a member, so a node that restarted
//! without its data directory, or joined later, gets it at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use quinn::Connection;

use super::revocation::{Revocation, RevocationApplied, RevocationError};
use super::shared::{inc, Shared};

/// The file in the data directory that keeps the newest list.
pub(crate) const REVOCATION_FILE: &str = "revoked.crl";

/// Most members sent a new list at once.
const SPREAD_CONCURRENCY: usize = 16;

/// Where a list came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// The application, or a client: send it to every member.
    Origin,
    /// Another member: it sends it to all.
    Peer,
}

/// Checks and installs `bytes` (a CRL, PEM or DER) if newer than the node's list.
pub(crate) async fn apply(
    shared: &Arc<Shared>,
    bytes: &[u8],
    source: Source,
) -> Result<RevocationApplied, RevocationError> {
    let _one_at_a_time = shared.revoking.lock().await;
    let current = shared.current_identity();
    let rev = match Revocation::parse(bytes, &current) {
        Ok(rev) => rev,
        Err(e) => {
            inc(&shared.counters.revocations_refused);
            tracing::warn!(?source, error = %e, "revocation list refused");
            return Err(e);
        }
    };
    if let Some(have) = current.revocation().filter(|c| c.number() >= rev.number()) {
        return Ok(RevocationApplied {
            fresh: false,
            number: have.number(),
        });
    }
    let updated = current.with_revocation(Some(rev.clone()));
    // In force for connections that complete their handshake from now on (some began
    // under the old TLS configs: `revoked` checks them once they are up).
    shared.set_identity(updated.clone());
    if let Err(e) = install(shared, &updated, &rev).await {
        shared.set_identity(current);
        return Err(e);
    }
    inc(&shared.counters.revocations_applied);
    tracing::warn!(
        number = rev.number(),
        revoked = rev.serials().len(),
        "revocation list applied: those certificates are refused from now on"
    );
    if let Some(dir) = &shared.data_dir {
        if let Err(e) = keep(dir, &rev) {
            tracing::warn!(error = %e, "cannot keep the revocation list in the data directory");
        }
    }
    if source == Source::Origin {
        tokio::spawn(spread(shared.clone(), rev.clone()));
    }
    Ok(RevocationApplied {
        fresh: true,
        number: rev.number(),
    })
}

/// Has the driver use TLS configurations built for `identity` and close the
/// connections with certificates `rev` revokes.
async fn install(
    shared: &Shared,
    identity: &super::identity::Identity,
    rev: &Revocation,
) -> Result<(), RevocationError> {
    let not_applied = |e: String| RevocationError::NotApplied(e);
    let (server, client) = shared
        .tls_configs(identity)
        .map_err(|e| not_applied(e.to_string()))?;
    let tx = shared
        .commands
        .upgrade()
        .ok_or_else(|| not_applied("the node is stopping".into()))?;
    let cmds = super::handle::Commands::from(tx);
    cmds.reload_tls(server, client)
        .await
        .map_err(|_| not_applied("the node is stopping".into()))?;
    let closed = cmds
        .close_revoked(rev.clone())
        .await
        .map_err(|_| not_applied("the node is stopping".into()))?;
    if closed > 0 {
        tracing::warn!(closed, "closed the connections of revoked certificates");
    }
    Ok(())
}

/// Writes the list to `dir/revoked.crl` (through a temporary file, so a crash leaves
/// the old list or the new one).
fn keep(dir: &Path, rev: &Revocation) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp: PathBuf = dir.join(format!("{REVOCATION_FILE}.tmp"));
    std::fs::write(&tmp, rev.to_pem())?;
    std::fs::rename(tmp, dir.join(REVOCATION_FILE))
}

/// The list kept in `dir`, if there is one (read at start).
pub(crate) fn kept(dir: &Path) -> Option<Vec<u8>> {
    std::fs::read(dir.join(REVOCATION_FILE)).ok()
}

/// Longest wait between two sends of a list to a member that has not taken it.
const MAX_SEND_WAIT: std::time::Duration = std::time::Duration::from_secs(16);

/// Sends `rev` to every live member (alive or suspect) but this node, a few at a time.
/// A member that does not take it is tried again, waiting twice as long after each
/// failure (1 s, 2 s, ... up to 16 s), for as long as it is live in this node's view
/// and `rev` is the node's list: a member cut off for a while gets it once it is back,
/// even if no new connection is opened with it meanwhile.
async fn spread(shared: Arc<Shared>, rev: Revocation) {
    let me = shared.me;
    let members: Vec<_> = {
        let snap = shared.snapshot.borrow();
        snap.members
            .iter()
            .filter(|m| m.id != me && m.state.is_live())
            .map(|m| (m.id, m.addr))
            .collect()
    };
    let limit = Arc::new(tokio::sync::Semaphore::new(SPREAD_CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for (id, addr) in members {
        let (limit, shared, der) = (limit.clone(), shared.clone(), rev.der().to_vec());
        let number = rev.number();
        tasks.spawn(async move {
            let mut wait = std::time::Duration::from_secs(1);
            let mut attempt = 0u32;
            while still_due(&shared, id, number) {
                attempt += 1;
                let sent = {
                    let _slot = limit.acquire().await;
                    let identity = shared.current_identity();
                    super::status::send_revocation(&identity, addr, &shared.cluster, der.clone())
                        .await
                };
                match sent {
                    Ok(_) => return,
                    Err(error) => tracing::debug!(%addr, %error, attempt, "revocation list not sent"),
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_SEND_WAIT);
            }
            // The revoked node itself ends here (its handshake is refused, and it is
            // declared failed).
            tracing::debug!(%addr, attempt, "revocation list no longer sent to this member");
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// Whether member `id` should still be sent list `number`: the node runs, the list is
/// still its newest, and the member is live in its view.
fn still_due(shared: &Shared, id: crate::wire::NodeId, number: u64) -> bool {
    if shared.commands.upgrade().is_none() {
        return false;
    }
    let current = shared.current_identity();
    if current.revocation().map(Revocation::number) != Some(number) {
        return false;
    }
    let snap = shared.snapshot.borrow();
    snap.members.iter().any(|m| m.id == id && m.state.is_live())
}

/// Whether the peer of `conn` presented a certificate the node's list revokes: a
/// handshake that began before the list was put in force completes under the old TLS
/// configuration, so every new connection is checked once more.
pub(crate) fn revoked(conn: &Connection, shared: &Shared) -> bool {
    let identity = shared.current_identity();
    let Some(rev) = identity.revocation() else {
        return false;
    };
    super::tls::peer_serial(conn).is_some_and(|s| rev.revokes_serial(&s))
}

/// Offers the node's list, if it has one, on a new connection with a member.
pub(crate) fn offer(conn: &Connection, shared: &Arc<Shared>) {
    let Some(rev) = shared.current_identity().revocation().cloned() else {
        return;
    };
    let (conn, cluster) = (conn.clone(), shared.cluster.clone());
    tokio::spawn(async move {
        if let Err(error) = super::status::offer_revocation(&conn, &cluster, rev.der()).await {
            tracing::debug!(%error, "revocation list not offered");
        }
    });
}
