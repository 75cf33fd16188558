//! What every real-process test on the namespace network needs before it starts: root,
//! the `ip` and `nft` tools, libfaketime, and the lock that keeps its clusters from
//! running at once. Shared by `jepsen.rs`, `bully.rs` and `liar.rs`.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use anyhow::{bail, Context, Result};

use crate::net;

/// Held for the whole run by each test that starts a cluster: two clusters at once
/// would starve each other's processes on a small machine, and would clash anyway
/// (namespaces are named after the test process, addresses are fixed).
static CLUSTER: Mutex<()> = Mutex::new(());

/// The cluster lock (also after another test failed while holding it).
pub fn exclusive() -> MutexGuard<'static, ()> {
    CLUSTER.lock().unwrap_or_else(|e| e.into_inner())
}

/// The number in environment variable `name`, or `default` when it is not set.
#[allow(dead_code)] // not every test binary reads one
pub fn env_num<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(s) => s
            .trim()
            .parse()
            .ok()
            .with_context(|| format!("{name}={s:?} is not a number")),
        Err(_) => Ok(default),
    }
}

/// Fails unless the test can build its network: it must run as root. Returns
/// libfaketime's library.
pub fn require_root_and_tools() -> Result<PathBuf> {
    // `ip` and `nft` live in sbin, which a plain user's PATH may lack.
    let path = std::env::var("PATH").unwrap_or_default();
    if !path.split(':').any(|d| d == "/usr/sbin") {
        std::env::set_var("PATH", format!("{path}:/usr/sbin:/sbin"));
    }
    let uid = net::run("id", &["-u"])?;
    if uid.trim() != "0" {
        bail!(
            "this test needs root: it runs each node in its own network namespace \
             (ip netns, veth pairs, a bridge) and cuts links with nftables; run it as root \
             (uid is {})",
            uid.trim()
        );
    }
    for (tool, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        if net::run("sh", &["-c", &format!("command -v {tool}")]).is_err() {
            bail!("this test needs `{tool}` (apt-get install {package})");
        }
    }
    faketime_lib().context("this test needs libfaketime (apt-get install faketime)")
}

/// libfaketime's preload library, as the Debian package installs it.
fn faketime_lib() -> Option<PathBuf> {
    let listed = net::run("dpkg", &["-L", "libfaketime"]).unwrap_or_default();
    if let Some(p) = listed
        .lines()
        .find(|l| l.ends_with("/libfaketime.so.1"))
        .map(PathBuf::from)
        .filter(|p| p.exists())
    {
        return Some(p);
    }
    std::fs::read_dir("/usr/lib")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("faketime/libfaketime.so.1"))
        .find(|p| p.exists())
}
