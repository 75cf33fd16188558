//! `Node`: a running cluster member, its membership, groups, elections, locks and
//! metrics.
//!
//! The Rust node sits in an `Arc` behind a lock held only to clone or take it. Each call
//! works on a clone ([`Handle`]), and waits also end when the node is being stopped
//! (`leave`/`shutdown` set [`Node::stop`]), so that `leave` soon owns the node alone and
//! can consume it.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use tokio::sync::watch;

use crate::cluster::{self, Explicit, Overrides};
use crate::election::Campaign;
use crate::events::{EventStream, Member};
use crate::lock::Lock;
use crate::{block_on, drop_in_runtime, errors};

/// A running quorate node: a member of the cluster (SWIM gossip over QUIC with mutual
/// TLS), with groups, leader election and locks.
#[pyclass(frozen, module = "quorate._quorate")]
pub(crate) struct Node {
    id: u64,
    local_addr: String,
    heartbeat_timeout: Option<Duration>,
    node: Mutex<Option<Arc<quorate::Node>>>,
    /// Set once the node is being stopped: every wait on it ends.
    stop: watch::Sender<bool>,
}

/// One call's hold on the running node. Dropped inside the runtime's context (it may
/// be the last reference, whose drop stops the node).
struct Handle {
    node: Option<Arc<quorate::Node>>,
    stop: watch::Receiver<bool>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        drop_in_runtime(self.node.take());
    }
}

/// Completes once the node is being stopped.
async fn stopping(mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Handle {
    fn node(&self) -> &quorate::Node {
        self.node
            .as_deref()
            .expect("a handle holds its node until dropped")
    }

    /// Runs `f(node)` to completion, or raises `NodeStopped` when the node is stopped
    /// meanwhile (the future is dropped).
    fn run<'a, F, Fut>(&'a self, py: Python<'_>, f: F) -> PyResult<Fut::Output>
    where
        F: FnOnce(&'a quorate::Node) -> Fut,
        Fut: Future + Send + 'a,
        Fut::Output: Send,
    {
        let fut = f(self.node());
        let stop = stopping(self.stop.clone());
        let out = block_on(py, async move {
            tokio::select! {
                biased;
                out = fut => Some(out),
                () = stop => None,
            }
        })?;
        out.ok_or_else(errors::stopped)
    }
}

impl Node {
    fn slot(&self) -> MutexGuard<'_, Option<Arc<quorate::Node>>> {
        self.node.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn handle(&self) -> PyResult<Handle> {
        let node = self.slot().clone().ok_or_else(errors::stopped)?;
        Ok(Handle {
            node: Some(node),
            stop: self.stop.subscribe(),
        })
    }

    /// Takes the node out for `leave` or `shutdown`: later calls raise `NodeStopped`,
    /// waits under way end, and once no other call holds it, it is this call's alone.
    fn take(&self, py: Python<'_>) -> PyResult<quorate::Node> {
        let mut node = self.slot().take().ok_or_else(errors::stopped)?;
        self.stop.send_replace(true);
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            match Arc::try_unwrap(node) {
                Ok(n) => return Ok(n),
                Err(shared) if Instant::now() < end => {
                    node = shared;
                    py.detach(|| std::thread::sleep(Duration::from_millis(2)));
                }
                Err(shared) => {
                    drop_in_runtime(shared);
                    return Err(errors::QuorateError::new_err(
                        "another thread still uses the node: it stops when that call returns, \
                         without announcing its departure",
                    ));
                }
            }
        }
    }

    fn start_with(py: Python<'_>, cfg: anyhow::Result<quorate::NodeConfig>) -> PyResult<Node> {
        let cfg = cfg.map_err(|e| errors::start(&e))?;
        let id = cfg.id;
        let heartbeat_timeout = cfg.heartbeat_timeout;
        let node = block_on(py, quorate::Node::start(cfg))?
            .map_err(|e| errors::StartError::new_err(format!("cannot start node {id}: {e}")))?;
        Ok(Node {
            id: id.0,
            local_addr: node.local_addr().to_string(),
            heartbeat_timeout,
            node: Mutex::new(Some(Arc::new(node))),
            stop: watch::Sender::new(false),
        })
    }
}

/// A watchdog timeout in seconds from Python: `None` (no watchdog) or a positive,
/// finite number.
fn watchdog_timeout(seconds: Option<f64>) -> PyResult<Option<Duration>> {
    match seconds {
        Some(s) if s <= 0.0 || Duration::try_from_secs_f64(s).is_err() => {
            Err(pyo3::exceptions::PyValueError::new_err(format!(
                "heartbeat_timeout must be a number of seconds > 0 (or None), not {s}"
            )))
        }
        s => Ok(s.map(Duration::from_secs_f64)),
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let node = self.slot().take();
        drop_in_runtime(node);
    }
}

#[pymethods]
impl Node {
    /// Starts node `node_id` of the cluster directory `dir` that `quorate init` (or
    /// `quorate.init_cluster`) wrote. `heartbeat_timeout` (seconds) arms the
    /// application watchdog (see `heartbeat`).
    #[staticmethod]
    #[pyo3(signature = (dir, node_id, *, listen = None, seeds = None, preset = None, metadata = Vec::new(), data_dir = None, issue_certificate = false, advertise = None, heartbeat_timeout = None))]
    #[allow(clippy::too_many_arguments)]
    fn from_cluster_dir(
        py: Python<'_>,
        dir: PathBuf,
        node_id: u64,
        listen: Option<String>,
        seeds: Option<Vec<String>>,
        preset: Option<String>,
        metadata: Vec<u8>,
        data_dir: Option<PathBuf>,
        issue_certificate: bool,
        advertise: Option<String>,
        heartbeat_timeout: Option<f64>,
    ) -> PyResult<Node> {
        let o = Overrides {
            listen,
            advertise,
            seeds,
            preset,
            metadata,
            data_dir,
            heartbeat_timeout: watchdog_timeout(heartbeat_timeout)?,
        };
        let cfg = py.detach(|| cluster::from_dir(&dir, node_id, o, issue_certificate));
        Node::start_with(py, cfg)
    }

    /// Starts node `node_id` from explicit parameters (PEM file paths).
    /// `heartbeat_timeout` (seconds) arms the application watchdog (see `heartbeat`).
    #[staticmethod]
    #[pyo3(signature = (node_id, listen, *, cert_pem, key_pem, ca_pem, seeds = Vec::new(), voters = Vec::new(), cluster_name = "quorate".to_owned(), preset = "lan".to_owned(), metadata = Vec::new(), data_dir = None, advertise = None, heartbeat_timeout = None))]
    #[allow(clippy::too_many_arguments)]
    fn start(
        py: Python<'_>,
        node_id: u64,
        listen: String,
        cert_pem: PathBuf,
        key_pem: PathBuf,
        ca_pem: PathBuf,
        seeds: Vec<String>,
        voters: Vec<u64>,
        cluster_name: String,
        preset: String,
        metadata: Vec<u8>,
        data_dir: Option<PathBuf>,
        advertise: Option<String>,
        heartbeat_timeout: Option<f64>,
    ) -> PyResult<Node> {
        let heartbeat_timeout = watchdog_timeout(heartbeat_timeout)?;
        let e = Explicit {
            id: node_id,
            cert: cert_pem,
            key: key_pem,
            ca: ca_pem,
            voters,
            cluster_name,
        };
        let o = Overrides {
            listen: Some(listen),
            advertise,
            seeds: Some(seeds),
            preset: Some(preset),
            metadata,
            data_dir,
            heartbeat_timeout,
        };
        let cfg = py.detach(|| cluster::explicit(e, o));
        Node::start_with(py, cfg)
    }

    /// This node's id.
    #[getter]
    fn id(&self) -> u64 {
        self.id
    }

    /// The address the node's socket is bound to, as `"IP:PORT"`.
    #[getter]
    fn local_addr(&self) -> &str {
        &self.local_addr
    }

    /// Whether the node runs (not left or shut down through this object).
    #[getter]
    fn running(&self) -> bool {
        self.slot().is_some()
    }

    /// The application watchdog's timeout in seconds (`None`: no watchdog).
    #[getter]
    fn heartbeat_timeout(&self) -> Option<f64> {
        self.heartbeat_timeout.map(|t| t.as_secs_f64())
    }

    /// Tells the application watchdog that the application is alive; never waits.
    /// With `heartbeat_timeout` set, call it at least that often: a node whose
    /// application stays silent longer leaves every group it joined and resigns every
    /// campaign, leadership and lock (it stays a member of the cluster). Returns
    /// `False` when the watchdog had expired since the last call (join and campaign
    /// again to take part), `True` otherwise (always without a watchdog).
    fn heartbeat(&self) -> PyResult<bool> {
        Ok(self.handle()?.node().heartbeat())
    }

    /// The address peers know this node by.
    fn advertised_addr(&self) -> PyResult<String> {
        Ok(self.handle()?.node().advertised_addr().to_string())
    }

    /// The member list as this node sees it (itself included), by id. A snapshot.
    fn members(&self) -> PyResult<Vec<Member>> {
        let mut members = self.handle()?.node().members();
        members.sort_by_key(|m| m.id.0);
        Ok(members.iter().map(Member::new).collect())
    }

    /// One member's record in this node's view, or `None`.
    fn member(&self, id: u64) -> PyResult<Option<Member>> {
        let h = self.handle()?;
        Ok(h.node()
            .member(quorate::NodeId(id))
            .as_ref()
            .map(Member::new))
    }

    /// Publishes new metadata (gossiped with a raised incarnation).
    fn set_metadata(&self, py: Python<'_>, metadata: Vec<u8>) -> PyResult<()> {
        let h = self.handle()?;
        h.run(py, |n| n.set_metadata(metadata))?
            .map_err(errors::set_metadata)
    }

    /// A subscription to this node's events. The first call receives every event since
    /// the node started; later ones see events from then on.
    #[pyo3(signature = (*, renewals = false))]
    fn events(&self, renewals: bool) -> PyResult<EventStream> {
        Ok(EventStream::new(
            self.id,
            self.handle()?.node().events(),
            renewals,
        ))
    }

    /// Creates `group` (tooz `create_group`).
    fn create_group(&self, py: Python<'_>, group: &str) -> PyResult<()> {
        let h = self.handle()?;
        h.run(py, |n| n.create_group(group))?
            .map_err(errors::group_op)
    }

    /// Deletes `group`; refused while it has members.
    fn delete_group(&self, py: Python<'_>, group: &str) -> PyResult<()> {
        let h = self.handle()?;
        h.run(py, |n| n.delete_group(group))?
            .map_err(errors::group_op)
    }

    /// Joins `group` with `capabilities`.
    #[pyo3(signature = (group, capabilities = Vec::new()))]
    fn join_group(&self, py: Python<'_>, group: &str, capabilities: Vec<u8>) -> PyResult<()> {
        let h = self.handle()?;
        h.run(py, |n| n.join_group(group, capabilities))?
            .map_err(errors::group_op)
    }

    /// Leaves `group`.
    fn leave_group(&self, py: Python<'_>, group: &str) -> PyResult<()> {
        let h = self.handle()?;
        h.run(py, |n| n.leave_group(group))?
            .map_err(errors::group_op)
    }

    /// Replaces this node's capabilities in `group`.
    fn update_capabilities(
        &self,
        py: Python<'_>,
        group: &str,
        capabilities: Vec<u8>,
    ) -> PyResult<()> {
        let h = self.handle()?;
        h.run(py, |n| n.update_capabilities(group, capabilities))?
            .map_err(errors::group_op)
    }

    /// Every existing group, in name order. A snapshot.
    fn groups(&self) -> PyResult<Vec<String>> {
        Ok(self.handle()?.node().groups())
    }

    /// The members of `group` and their capabilities, by node id. A snapshot.
    fn group_members<'py>(&self, py: Python<'py>, group: &str) -> PyResult<Bound<'py, PyDict>> {
        let members = self
            .handle()?
            .node()
            .group_members(group)
            .map_err(errors::group)?;
        let d = PyDict::new(py);
        for (id, caps) in members {
            d.set_item(id.0, PyBytes::new(py, &caps))?;
        }
        Ok(d)
    }

    /// One member's capabilities in `group`. A snapshot.
    fn member_capabilities<'py>(
        &self,
        py: Python<'py>,
        group: &str,
        member: u64,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let h = self.handle()?;
        let caps = h
            .node()
            .member_capabilities(group, quorate::NodeId(member))
            .map_err(errors::group)?;
        Ok(PyBytes::new(py, &caps))
    }

    /// Runs for the leadership of `group`.
    fn campaign(&self, py: Python<'_>, group: &str) -> PyResult<Campaign> {
        let h = self.handle()?;
        let c = h
            .run(py, |n| n.campaign(group))?
            .map_err(errors::start_campaign)?;
        Ok(Campaign::new(c))
    }

    /// The leader of `group` and its term as gossip says, or `None`. A snapshot.
    fn leader(&self, group: &str) -> PyResult<Option<(u64, u64)>> {
        Ok(self.handle()?.node().leader(group).map(|(id, t)| (id.0, t)))
    }

    /// The leader of `group` as a quorum of voters confirms it, or `None` when nobody
    /// leads.
    fn confirmed_leader(&self, py: Python<'_>, group: &str) -> PyResult<Option<(u64, u64)>> {
        let h = self.handle()?;
        let l = h
            .run(py, |n| n.confirmed_leader(group))?
            .map_err(errors::leader_query)?;
        Ok(l.map(|(id, t)| (id.0, t)))
    }

    /// The live candidates for `group`'s leadership, by id.
    fn candidates(&self, group: &str) -> PyResult<Vec<u64>> {
        Ok(self
            .handle()?
            .node()
            .candidates(group)
            .iter()
            .map(|c| c.0)
            .collect())
    }

    /// The lock `name` (held by at most one node at a time, with fencing tokens).
    fn lock(&self, name: &str) -> PyResult<Lock> {
        Ok(Lock::new(self.handle()?.node().lock(name)))
    }

    /// The protocol's and the transport's counters, by name. A snapshot.
    fn stats(&self) -> PyResult<std::collections::BTreeMap<&'static str, u64>> {
        let h = self.handle()?;
        let n = h.node();
        Ok(n.stats()
            .metrics()
            .chain(n.transport_stats().metrics())
            .map(|m| (m.name, m.value))
            .collect())
    }

    /// Every counter and gauge of the node, by name (asks the node, so it waits).
    fn metrics(&self, py: Python<'_>) -> PyResult<std::collections::BTreeMap<&'static str, u64>> {
        let h = self.handle()?;
        let m = h.run(py, |n| n.metrics())?.map_err(errors::metrics)?;
        Ok(m.into_iter().map(|m| (m.name, m.value)).collect())
    }

    /// Waits until a seed has answered this node's join (at once for a node started
    /// without seeds), at most `timeout` seconds. Raises `JoinTimeout` naming the
    /// seeds; the node keeps retrying them.
    fn wait_joined(&self, py: Python<'_>, timeout: f64) -> PyResult<()> {
        let timeout = crate::duration(Some(timeout))?.unwrap_or_default();
        let h = self.handle()?;
        h.run(py, |n| n.wait_joined(timeout))?.map_err(errors::join)
    }

    /// Synchronises with a quorum of voters (read-your-writes across nodes): once it
    /// returns, this node's snapshots hold every group write that any node completed
    /// before the call began. Raises `SyncError` when no quorum answered within
    /// `timeout` seconds, or without voters.
    #[pyo3(signature = (timeout = 5.0))]
    fn sync(&self, py: Python<'_>, timeout: f64) -> PyResult<()> {
        let timeout = crate::duration(Some(timeout))?.unwrap_or_default();
        let h = self.handle()?;
        h.run(py, |n| n.sync(timeout))?.map_err(errors::sync)
    }

    /// Leaves the cluster gracefully (peers see `member_left`) and stops. Waits under
    /// way in other threads raise `NodeStopped`.
    fn leave(&self, py: Python<'_>) -> PyResult<()> {
        let node = self.take(py)?;
        block_on(py, node.leave())?.map_err(errors::leave)
    }

    /// Stops at once without a word (peers detect a failure).
    fn shutdown(&self, py: Python<'_>) -> PyResult<()> {
        let node = self.take(py)?;
        block_on(py, node.shutdown())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Leaves the cluster (when still running).
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        if self.running() {
            match self.leave(py) {
                Err(e) if e.is_instance_of::<errors::NodeStopped>(py) => {}
                other => other?,
            }
        }
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "Node(id={}, local_addr={}, running={})",
            self.id,
            crate::quote(&self.local_addr),
            if self.running() { "True" } else { "False" }
        )
    }
}

/// Adds `Node`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Node>()
}
