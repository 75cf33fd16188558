//! The Prometheus endpoint: `GET /metrics` at [`super::NodeConfig::metrics`] answers
//! every counter and gauge of the node (the engine's and the transport's, as
//! `Node::metrics` lists them) and one series per group (gossiped leader and term,
//! whether this node leads it), plus the voters alive in this node's view. The text is
//! encoded by `prometheus-client` (OpenMetrics text, which Prometheus scrapes); the
//! HTTP around it is the least a scraper needs: one request per connection, the
//! request head read with a bound on its size and time.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};

use super::driver::Command;
use super::handle::Commands;
use super::shared::Shared;
use crate::stats::{Metric, MetricKind};

/// Largest request head read (a scraper's is a few hundred bytes).
const MAX_REQUEST: usize = 8192;
/// Time a scraper has to send its request and read the answer.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
/// The content type of the answer.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves scrapes on `listener` until the node's driver is gone; at most `scrapes`
/// connections are served at once, the others wait in the listen backlog.
pub(crate) async fn serve(
    listener: TcpListener,
    cmds: mpsc::WeakUnboundedSender<Command>,
    shared: Arc<Shared>,
    scrapes: usize,
) {
    let permits = Arc::new(Semaphore::new(scrapes.max(1)));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        // A weak sender: the endpoint must not keep the driver alive.
        let Some(tx) = cmds.upgrade() else {
            return;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let scrape = answer(stream, Commands::from(tx), &shared);
            if tokio::time::timeout(SCRAPE_TIMEOUT, scrape).await.is_err() {
                tracing::debug!("metrics scrape timed out");
            }
            drop(permit);
        });
    }
}

/// Reads one request on `stream` and answers it.
async fn answer(mut stream: TcpStream, cmds: Commands, shared: &Shared) {
    let head = match read_head(&mut stream).await {
        Some(h) => h,
        None => return,
    };
    let (status, body) = match head.split_whitespace().take(2).collect::<Vec<_>>()[..] {
        ["GET", "/metrics"] => match (cmds.engine_metrics().await, cmds.leases().await) {
            (Ok(mut all), Ok(leases)) => {
                drop(cmds);
                all.extend(shared.counters.snapshot().metrics());
                ("200 OK", encode(all, leases, shared))
            }
            _ => ("503 Service Unavailable", "the node has stopped\n".to_owned()),
        },
        ["GET", _] => ("404 Not Found", "try /metrics\n".to_owned()),
        _ => ("405 Method Not Allowed", "only GET\n".to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The request line and headers, up to the blank line; `None` when the client sends
/// more than [`MAX_REQUEST`] bytes first, or closes.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() + n > MAX_REQUEST {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(buf).ok()
}

/// The text of one scrape: `metrics`, this node's `leases` (group, time left) and the
/// group and voter series of `shared`.
fn encode(metrics: Vec<Metric>, leases: Vec<(String, Duration)>, shared: &Shared) -> String {
    let mut registry = Registry::with_prefix("quorate");
    registry.register_collector(Box::new(Scrape::of(metrics, leases, shared)));
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &registry) {
        Ok(()) => text,
        Err(_) => "# encoding failed\n".to_owned(),
    }
}

/// A group with a gossiped leader, as one scrape reports it.
#[derive(Debug)]
struct GroupLine {
    group: String,
    leader: u64,
    term: u64,
    leading: bool,
}

/// One per-group family: its name, help and value of a group.
type Family = (&'static str, &'static str, fn(&GroupLine) -> u64);

/// What one scrape reports, taken when it arrives.
#[derive(Debug)]
struct Scrape {
    metrics: Vec<Metric>,
    /// Every group with a gossiped leader.
    groups: Vec<GroupLine>,
    voters: usize,
    voters_alive: usize,
    /// Unix seconds at which this node's certificate expires.
    cert_not_after: u64,
    /// This node's leaderships: group and the lease left.
    leases: Vec<(String, Duration)>,
}

impl Scrape {
    fn of(metrics: Vec<Metric>, leases: Vec<(String, Duration)>, shared: &Shared) -> Self {
        let snap = shared.snapshot.borrow().clone();
        let groups = snap
            .groups
            .leaders
            .iter()
            .map(|(g, (l, t))| GroupLine {
                group: g.clone(),
                leader: l.0,
                term: *t,
                leading: *l == shared.me,
            })
            .collect();
        Scrape {
            metrics,
            groups,
            voters: shared.voters.len(),
            voters_alive: snap.voters_alive(&shared.voters),
            cert_not_after: shared.own_expiry.not_after_unix(),
            leases,
        }
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for m in &self.metrics {
            match m.kind {
                MetricKind::Counter => {
                    let c = ConstCounter::new(m.value);
                    c.encode(encoder.encode_descriptor(m.name, m.help, None, c.metric_type())?)?;
                }
                MetricKind::Gauge => gauge(&mut encoder, m.name, m.help, m.value)?,
            }
        }
        gauge(
            &mut encoder,
            "voters",
            "Voters of the cluster's elections",
            self.voters as u64,
        )?;
        gauge(
            &mut encoder,
            "voters_alive",
            "Voters alive in this node's view (a quorum of them lets a candidate here win)",
            self.voters_alive as u64,
        )?;
        gauge(
            &mut encoder,
            "certificate_expiry_timestamp_seconds",
            "When this node's certificate expires (Unix seconds): renew before",
            self.cert_not_after,
        )?;
        let families: [Family; 3] = [
            ("group_leader", "Gossiped leader of each group (node id)", |g| g.leader),
            ("group_term", "Gossiped leader's term (fencing token) of each group", |g| g.term),
            ("group_leading", "1 when this node leads the group", |g| u64::from(g.leading)),
        ];
        for (name, help, value) in families {
            let g = ConstGauge::new(0i64);
            let mut family = encoder.encode_descriptor(name, help, None, g.metric_type())?;
            for group in &self.groups {
                let labels = [("group", group.group.as_str())];
                let v = i64::try_from(value(group)).unwrap_or(i64::MAX);
                ConstGauge::new(v).encode(family.encode_family(&labels)?)?;
            }
        }
        let g = ConstGauge::new(0f64);
        let mut family = encoder.encode_descriptor(
            "group_lease_remaining_seconds",
            "Seconds left of the lease of each group this node leads (renewals push it back)",
            None,
            g.metric_type(),
        )?;
        for (group, left) in &self.leases {
            let labels = [("group", group.as_str())];
            ConstGauge::new(left.as_secs_f64()).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
    g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
}
