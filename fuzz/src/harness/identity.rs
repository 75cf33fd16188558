//! Target `identity`: certificate and key parsing never panics.
//!
//! The first byte picks the mode:
//! - [`peer_kind`] on the raw bytes, or on a real node or client certificate (DER) with
//!   bytes of the input XORed in, so the parser gets past the outer structure;
//! - [`Identity::load`] and [`ClusterCa::load`] on three PEM files written from the
//!   input: arbitrary text, arbitrary DER under a PEM label, or real PEM files of a
//!   cluster generated once per process, possibly concatenated.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};
use quorate::identity::peer_kind;
use quorate::{ClusterCa, Identity, NodeId};

/// Real PEM files and DER certificates of one generated cluster.
struct Fixtures {
    /// PEM texts: CA certificate, CA key, node certificate, node key, client
    /// certificate, client key.
    pem: Vec<String>,
    /// DER of the node and client certificates.
    der: Vec<Vec<u8>>,
}

fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = scratch();
        let path = |name: &str| dir.join(name);
        let ca = ClusterCa::generate("fuzz").expect("a CA generates");
        ca.save(&path("ca.pem"), &path("ca.key"))
            .expect("the CA saves");
        let node = ca.issue_node(NodeId(7)).expect("a node certificate issues");
        node.save(&path("node.pem"), &path("node.key"))
            .expect("it saves");
        let client = ca.issue_client("ops").expect("a client certificate issues");
        client
            .save(&path("client.pem"), &path("client.key"))
            .expect("it saves");
        let names = [
            "ca.pem",
            "ca.key",
            "node.pem",
            "node.key",
            "client.pem",
            "client.key",
        ];
        let pem: Vec<String> = names
            .iter()
            .map(|n| std::fs::read_to_string(path(n)).expect("a fixture reads back"))
            .collect();
        for n in names {
            let _ = std::fs::remove_file(path(n));
        }
        let der = [&pem[2], &pem[4]].iter().map(|p| pem_body(p)).collect();
        Fixtures { pem, der }
    })
}

/// A directory of this thread's own (tests replay the corpus on several threads).
fn scratch() -> PathBuf {
    thread_local! {
        static DIR: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
    }
    DIR.with(|d| {
        d.borrow_mut()
            .get_or_insert_with(|| {
                let id = format!("{:?}", std::thread::current().id());
                let name: String = id.chars().filter(char::is_ascii_digit).collect();
                let dir = std::env::temp_dir()
                    .join(format!("quorate-fuzz-{}-{name}", std::process::id()));
                std::fs::create_dir_all(&dir).expect("a scratch directory");
                dir
            })
            .clone()
    })
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `der` as a PEM block labelled `label`.
fn pem_wrap(label: &str, der: &[u8]) -> String {
    let mut b64 = Vec::with_capacity(der.len() * 4 / 3 + 4);
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            b64.push(match i <= chunk.len() {
                true => BASE64[(n >> (18 - 6 * i)) as usize & 63],
                false => b'=',
            });
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The DER inside the first PEM block of `pem` (the fixtures' own, well-formed).
fn pem_body(pem: &str) -> Vec<u8> {
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    let body = pem.lines().skip(1).take_while(|l| !l.starts_with("-----"));
    for c in body.flat_map(str::bytes) {
        let Some(v) = BASE64.iter().position(|b| *b == c) else {
            continue;
        };
        bits = bits << 6 | v as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

/// One PEM file's contents, built from the input.
fn pem_file(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let fx = fixtures();
    let mut text = Vec::new();
    for _ in 0..u.int_in_range(1..=2)? {
        match u.int_in_range(0u8..=3)? {
            0 => text.extend_from_slice(u.arbitrary::<&[u8]>()?),
            1 => {
                let labels = [
                    "CERTIFICATE",
                    "PRIVATE KEY",
                    "EC PRIVATE KEY",
                    "RSA PRIVATE KEY",
                ];
                let label = u.choose(&labels)?;
                text.extend(pem_wrap(label, u.arbitrary::<&[u8]>()?).into_bytes());
            }
            _ => text.extend_from_slice(u.choose(&fx.pem)?.as_bytes()),
        }
    }
    Ok(text)
}

/// `peer_kind` on a real certificate with input bytes XORed in at input positions.
fn mutated_cert(u: &mut Unstructured<'_>) -> Result<()> {
    let mut der = u.choose(&fixtures().der)?.clone();
    while !u.is_empty() && !der.is_empty() {
        let at = u.choose_index(der.len())?;
        der[at] ^= u.arbitrary::<u8>()?;
    }
    let _ = peer_kind(&der);
    Ok(())
}

/// Both loaders on three files written from the input.
fn load(u: &mut Unstructured<'_>) -> Result<()> {
    let dir = scratch();
    let paths = [
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("ca.pem"),
    ];
    for p in &paths {
        std::fs::write(p, pem_file(u)?).expect("a scratch file writes");
    }
    let [cert, key, ca] = &paths;
    if let Ok(id) = Identity::load(cert, key, ca) {
        assert!(
            id.node_id().is_some() != id.client_name().is_some(),
            "a loaded identity binds exactly one of a node id and a client name"
        );
    }
    let _ = ClusterCa::load(cert, key);
    for p in &paths {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

/// Target `identity` (see the module documentation).
pub fn identity(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut u = Unstructured::new(rest);
    let _ = match mode % 4 {
        0 => {
            let _ = peer_kind(rest);
            Ok(())
        }
        1 => mutated_cert(&mut u),
        _ => load(&mut u),
    };
}
