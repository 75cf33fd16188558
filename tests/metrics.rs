//! The Prometheus endpoint of a real node: the text parses (every sample belongs to a
//! family with a TYPE), the families named in the docs are there, counters rise while
//! the node works, and a group's leader shows; other paths and methods are refused.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use quorate::{ClusterCa, Node, NodeId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP exchange: the status line and the body.
async fn get(addr: SocketAddr, request: &str) -> anyhow::Result<(String, String)> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(request.as_bytes()).await?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).await?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no header end: {answer:?}"))?;
    Ok((
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    ))
}

/// A scrape, parsed: family types, and samples by series (name and labels).
struct Text {
    types: BTreeMap<String, String>,
    samples: BTreeMap<String, f64>,
}

/// Parses the text exposition: `# TYPE name kind` lines, `name{labels} value` samples;
/// every sample must belong to a declared family (counters' samples end in `_total`).
fn parse(body: &str) -> Text {
    let mut types = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect(line);
            types.insert(name.to_owned(), kind.to_owned());
        } else if !line.starts_with('#') && !line.is_empty() {
            let (series, value) = line.rsplit_once(' ').expect(line);
            let value: f64 = value.parse().expect(line);
            let name = series.split('{').next().unwrap();
            let family = name.strip_suffix("_total").unwrap_or(name);
            assert!(
                types.contains_key(family),
                "sample without a family: {line}"
            );
            samples.insert(series.to_owned(), value);
        }
    }
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
    Text { types, samples }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_endpoint_serves_rising_counters_and_group_leaders() -> anyhow::Result<()> {
    let ca = ClusterCa::generate("test")?;
    let mut cfg = common::node_config(&ca, 1, &[]);
    cfg.config = cfg.config.with_voters(vec![NodeId(1)]);
    cfg.metrics = Some("127.0.0.1:0".parse()?);
    let cfg_lease = cfg.config.election.timing.lease;
    let a = Node::start(cfg).await?;
    let mut cfg = common::node_config(&ca, 2, &[a.local_addr()]);
    cfg.config = cfg.config.with_voters(vec![NodeId(1)]);
    let b = Node::start(cfg).await?;
    let mut campaign = a.campaign("g").await?;
    let leadership = tokio::time::timeout(Duration::from_secs(20), campaign.leadership()).await??;
    let addr = a.metrics_addr().expect("metrics endpoint bound");

    let request = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let first = loop {
        let (status, body) = get(addr, request).await?;
        assert!(status.contains("200"), "{status}");
        let text = parse(&body);
        let two = text.samples.get("quorate_members_alive") == Some(&2.0);
        let led = text
            .samples
            .contains_key("quorate_group_leader{group=\"g\"}");
        if two && led {
            break text;
        }
        assert!(tokio::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let families: BTreeSet<&str> = first.types.keys().map(String::as_str).collect();
    for f in [
        "quorate_frames_out",
        "quorate_bytes_out",
        "quorate_suspicions_raised",
        "quorate_refutations",
        "quorate_members_alive",
        "quorate_members_suspect",
        "quorate_members_dead",
        "quorate_members_left",
        "quorate_open_connections",
        "quorate_datagrams_out",
        "quorate_leaderships",
        "quorate_events_dropped",
        "quorate_voters_alive",
        "quorate_group_term",
        "quorate_group_leading",
        "quorate_group_lease_remaining_seconds",
        "quorate_renewals_late",
        "quorate_leases_expired",
    ] {
        assert!(families.contains(f), "no family {f}: {families:?}");
    }
    assert_eq!(first.types["quorate_frames_out"], "counter");
    assert_eq!(first.types["quorate_members_alive"], "gauge");
    assert_eq!(first.samples["quorate_group_leader{group=\"g\"}"], 1.0);
    assert_eq!(first.samples["quorate_group_leading{group=\"g\"}"], 1.0);
    assert_eq!(
        first.samples["quorate_group_term{group=\"g\"}"],
        leadership.term() as f64
    );
    assert_eq!(first.samples["quorate_voters_alive"], 1.0);
    let left = first.samples["quorate_group_lease_remaining_seconds{group=\"g\"}"];
    let lease = cfg_lease.as_secs_f64();
    assert!(left > 0.0 && left <= lease, "lease left {left} of {lease}");
    assert_eq!(first.types["quorate_leases_expired"], "counter");

    // Probes keep going: the frames sent rise between scrapes.
    let before = first.samples["quorate_frames_out_total"];
    loop {
        let (_, body) = get(addr, request).await?;
        if parse(&body).samples["quorate_frames_out_total"] > before {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "frames_out stuck at {before}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (status, _) = get(addr, "GET /other HTTP/1.1\r\n\r\n").await?;
    assert!(status.contains("404"), "{status}");
    let (status, _) = get(addr, "POST /metrics HTTP/1.1\r\n\r\n").await?;
    assert!(status.contains("405"), "{status}");
    drop(campaign);
    b.shutdown().await;
    a.shutdown().await;
    Ok(())
}
