//! The test network: one namespace per node slot, each with its own address on a veth
//! pair into a bridge that lives in a hub namespace of its own, so the nodes' traffic
//! never touches the root namespace. Partitions are nftables drop rules inside the
//! node namespaces. Everything is named after the test's pid, and removed on drop.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// The port every node listens on (each has an address of its own).
pub const PORT: u16 = 7000;

/// The address of slot `k` (1-based).
pub fn addr(k: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 0, k as u8)
}

/// Runs `prog args`, failing with its stderr.
pub fn run(prog: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {prog}"))?;
    if !out.status.success() {
        bail!(
            "`{prog} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The namespaces of one run; dropping it kills whatever runs in them and deletes them.
pub struct Net {
    prefix: String,
    slots: usize,
}

impl Net {
    /// Creates the hub with its bridge and `slots` node namespaces, slot `k` holding
    /// `eth0` with address 10.77.0.k/24.
    pub fn create(slots: usize) -> Result<Net> {
        remove_stale();
        let net = Net {
            prefix: prefix_of(std::process::id()),
            slots,
        };
        let hub = net.hub();
        run("ip", &["netns", "add", &hub])?;
        net.ip(&hub, &["link", "set", "lo", "up"])?;
        net.ip(&hub, &["link", "add", "br0", "type", "bridge"])?;
        net.ip(&hub, &["link", "set", "br0", "up"])?;
        for k in 1..=slots {
            let ns = net.ns(k);
            let veth = format!("v{k}");
            run("ip", &["netns", "add", &ns])?;
            net.ip(
                &hub,
                &[
                    "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
                ],
            )?;
            net.ip(&hub, &["link", "set", &veth, "master", "br0"])?;
            net.ip(&hub, &["link", "set", &veth, "up"])?;
            let cidr = format!("{}/24", addr(k));
            net.ip(&ns, &["addr", "add", &cidr, "dev", "eth0"])?;
            net.ip(&ns, &["link", "set", "eth0", "up"])?;
            net.ip(&ns, &["link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    fn hub(&self) -> String {
        format!("{}-h", self.prefix)
    }

    /// The namespace of slot `k`.
    pub fn ns(&self, k: usize) -> String {
        format!("{}-{k}", self.prefix)
    }

    fn ip(&self, ns: &str, args: &[&str]) -> Result<String> {
        let mut all = vec!["-n", ns];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Drops, inside slot `k`, packets from each of `from` and to each of `to`.
    pub fn block(&self, k: usize, from: &[usize], to: &[usize]) -> Result<()> {
        let set = |slots: &[usize]| {
            slots
                .iter()
                .map(|s| addr(*s).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut rules = String::from("table inet jepsen {\n");
        if !from.is_empty() {
            rules += &format!(
                "  chain input {{ type filter hook input priority 0; policy accept; \
                 ip saddr {{ {} }} drop; }}\n",
                set(from)
            );
        }
        if !to.is_empty() {
            rules += &format!(
                "  chain output {{ type filter hook output priority 0; policy accept; \
                 ip daddr {{ {} }} drop; }}\n",
                set(to)
            );
        }
        rules += "}\n";
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns(k), "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run nft")?;
        child.stdin.take().unwrap().write_all(rules.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "nft in slot {k} failed: {}\n{rules}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Removes every drop rule of every slot.
    pub fn heal(&self) -> Result<()> {
        for k in 1..=self.slots {
            run(
                "ip",
                &["netns", "exec", &self.ns(k), "nft", "flush", "ruleset"],
            )?;
        }
        Ok(())
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let mut all: Vec<String> = (1..=self.slots).map(|k| self.ns(k)).collect();
        all.push(self.hub());
        for ns in all {
            delete_ns(&ns);
        }
    }
}

fn prefix_of(pid: u32) -> String {
    format!("qj{pid}")
}

/// Kills what runs in `ns` and deletes it.
fn delete_ns(ns: &str) {
    if let Ok(pids) = run("ip", &["netns", "pids", ns]) {
        for pid in pids.split_whitespace() {
            let _ = run("kill", &["-9", pid]);
        }
    }
    let _ = run("ip", &["netns", "del", ns]);
}

/// Deletes the namespaces that an earlier run, whose process is gone, left behind
/// (a test killed before its drop ran). Names of live processes are left alone.
fn remove_stale() {
    let Ok(list) = run("ip", &["netns", "list"]) else {
        return;
    };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = name
            .strip_prefix("qj")
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if name.starts_with(&format!("{}-", prefix_of(pid)))
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            delete_ns(name);
        }
    }
}
