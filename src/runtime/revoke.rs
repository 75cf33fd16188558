//! Applying a revocation list on a running node, and passing it on.
//!
//! A list given to a node by its application or by a client (`quorate revoke`) is
//! checked, installed (new TLS configurations that refuse the revoked certificates,
//! connections with them closed), kept in the data directory, and sent to every live
//! member. A list received from a member is installed the same way but not sent on
//! from there: the node it came from sends it to all. Every node also offers its list
//! on each new connection with a member, so a node that was away or partitioned gets
//! it when it is back in touch.

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

/// Tries to send a list to one member this many times, waiting twice as long after
/// each failure (1 s, 2 s, 4 s, ...).
const SEND_ATTEMPTS: u32 = 5;

/// Sends `rev` to every live member (alive or suspect) but this node, a few at a time,
/// each retried with backoff until it took the list or `SEND_ATTEMPTS` failed.
async fn spread(shared: Arc<Shared>, rev: Revocation) {
    let me = shared.me;
    let addrs: Vec<_> = {
        let snap = shared.snapshot.borrow();
        snap.members
            .iter()
            .filter(|m| m.id != me && m.state.is_live())
            .map(|m| m.addr)
            .collect()
    };
    let limit = Arc::new(tokio::sync::Semaphore::new(SPREAD_CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for addr in addrs {
        let (limit, identity) = (limit.clone(), shared.current_identity());
        let (cluster, der) = (shared.cluster.clone(), rev.der().to_vec());
        tasks.spawn(async move {
            let mut wait = std::time::Duration::from_secs(1);
            for attempt in 1..=SEND_ATTEMPTS {
                let sent = {
                    let _slot = limit.acquire().await;
                    super::status::send_revocation(&identity, addr, &cluster, der.clone()).await
                };
                match sent {
                    Ok(_) => return,
                    Err(error) => tracing::debug!(%addr, %error, attempt, "revocation list not sent"),
                }
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            // The revoked node itself ends here too (its handshake is refused).
            tracing::info!(%addr, "revocation list not sent; the member gets it on its next new connection");
        });
    }
    while tasks.join_next().await.is_some() {}
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
