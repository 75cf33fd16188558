//! Real hosts for the multi-process tests: one network namespace per host, each with its
//! own address and host name, joined by Linux bridges in a namespace of their own (so no
//! test traffic touches the root namespace or leaves the machine).
//!
//! ```text
//!   host k (namespace PREFIX-k): eth0 = 10.77.0.k/24, /etc/hosts names h1..hN
//!        | veth pair (vk in the hub, eth0 in host k)
//!   hub (namespace PREFIX-hub): br0 ==== trunk (veth t0 <-> t1) ==== br1
//! ```
//!
//! Every host starts on `br0`. [`Net::partition`] moves some hosts' links to `br1`
//! (still joined to `br0` by the trunk, so nothing changes yet) and sets the trunk down
//! (`ip link set t0 down`): the hosts on `br1` then reach each other and nobody else.
//! [`Net::heal`] sets it up again.
//!
//! Host names resolve inside each namespace because `ip netns exec NS` bind-mounts
//! `/etc/netns/NS/hosts` over `/etc/hosts`. Everything is named after the test's pid
//! (and a counter), and [`Net`]'s drop kills whatever runs in its namespaces and removes
//! them and their `/etc/netns` folders, even on panic. Namespaces that a run killed
//! before its drop left behind are removed by the next run.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

/// What every name of this module starts with.
const TAG: &str = "qh";
/// Where `ip netns exec` looks for per-namespace files.
const ETC: &str = "/etc/netns";

/// The address of host `k` (1-based).
pub fn addr(k: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 0, u8::try_from(k).expect("at most 254 hosts"))
}

/// The host name of host `k`.
pub fn host(k: usize) -> String {
    format!("h{k}")
}

/// The `ip` tool: on PATH, or in sbin (which a plain user's PATH may lack).
fn ip_tool() -> Result<&'static Path> {
    static IP: OnceLock<Option<PathBuf>> = OnceLock::new();
    let found = IP.get_or_init(|| {
        let path = std::env::var("PATH").unwrap_or_default();
        let found = path
            .split(':')
            .filter(|d| !d.is_empty())
            .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
            .map(|d| Path::new(d).join("ip"))
            .find(|p| p.is_file());
        found
    });
    found
        .as_deref()
        .context("`ip` (iproute2) is not installed: apt-get install iproute2")
}

/// util-linux's `setpriv`, if it can set the parent-death signal.
fn setpriv() -> Option<&'static Path> {
    static SETPRIV: OnceLock<Option<PathBuf>> = OnceLock::new();
    SETPRIV
        .get_or_init(|| {
            let help = Command::new("setpriv").arg("--help").output().ok()?;
            String::from_utf8_lossy(&help.stdout)
                .contains("--pdeathsig")
                .then(|| PathBuf::from("setpriv"))
        })
        .as_deref()
}

/// Fails, saying why, unless this process can build namespaces: it must be root and
/// have `ip`.
pub fn require() -> Result<()> {
    let uid = rustix::process::geteuid();
    if !uid.is_root() {
        bail!(
            "this test needs root: it runs each node on a host of its own, a network \
             namespace (ip netns, veth pairs, bridges); run it as root, as .ci/run does \
             (euid is {})",
            uid.as_raw()
        );
    }
    ip_tool()?;
    Ok(())
}

/// Runs `prog args`, failing with its stderr.
fn run(prog: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", prog.display()))?;
    if !out.status.success() {
        bail!(
            "`{} {}` failed: {}",
            prog.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip ARGS`.
fn ip(args: &[&str]) -> Result<String> {
    run(ip_tool()?, args)
}

/// The hosts of one test; dropping it kills what runs on them and removes them.
pub struct Net {
    prefix: String,
    hosts: usize,
    /// Namespaces made so far (the hub first), removed on drop.
    made: Vec<String>,
}

impl Net {
    /// Builds the hub with its two bridges and trunk, and `hosts` hosts, host `k` with
    /// address 10.77.0.k/24 and host names `h1`..`hN` in its `/etc/hosts`. Fails (after
    /// removing what it made) when something cannot be created.
    pub fn create(hosts: usize) -> Result<Net> {
        require()?;
        remove_stale();
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let mut net = Net {
            prefix: format!(
                "{TAG}{}n{}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::SeqCst)
            ),
            hosts,
            made: Vec::new(),
        };
        let hub = net.hub();
        net.add_ns(&hub)?;
        for args in [
            &["link", "set", "lo", "up"][..],
            &["link", "add", "br0", "type", "bridge"],
            &["link", "add", "br1", "type", "bridge"],
            &["link", "add", "t0", "type", "veth", "peer", "name", "t1"],
            &["link", "set", "t0", "master", "br0"],
            &["link", "set", "t1", "master", "br1"],
            &["link", "set", "br0", "up"],
            &["link", "set", "br1", "up"],
            &["link", "set", "t0", "up"],
            &["link", "set", "t1", "up"],
        ] {
            net.hub_ip(args)?;
        }
        let mut hosts_file = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost\n");
        for k in 1..=hosts {
            hosts_file += &format!("{}\t{}\n", addr(k), host(k));
        }
        for k in 1..=hosts {
            let ns = net.ns(k);
            net.add_ns(&ns)?;
            write_hosts(&ns, &hosts_file)?;
            let veth = format!("v{k}");
            net.hub_ip(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            net.hub_ip(&["link", "set", &veth, "master", "br0"])?;
            net.hub_ip(&["link", "set", &veth, "up"])?;
            let cidr = format!("{}/24", addr(k));
            ip(&["-n", &ns, "addr", "add", &cidr, "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    fn add_ns(&mut self, ns: &str) -> Result<()> {
        ip(&["netns", "add", ns])
            .context("cannot create a network namespace (is this root, with iproute2?)")?;
        self.made.push(ns.to_owned());
        Ok(())
    }

    fn hub(&self) -> String {
        format!("{}-hub", self.prefix)
    }

    fn hub_ip(&self, args: &[&str]) -> Result<String> {
        let hub = self.hub();
        let mut all = vec!["-n", &hub];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// The namespace of host `k`.
    pub fn ns(&self, k: usize) -> String {
        format!("{}-{k}", self.prefix)
    }

    /// A command that runs `prog` on host `k`: `ip netns exec`, which execs `prog` (through
    /// `setpriv --pdeathsig KILL` when there is one, so that `prog` dies with the thread
    /// that started it even if the test is killed before its drop runs). The child's pid
    /// is `prog`'s own: killing the child kills `prog`.
    pub fn command(&self, k: usize, prog: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(ip_tool().expect("checked by Net::create"));
        cmd.args(["netns", "exec", &self.ns(k)]);
        if let Some(setpriv) = setpriv() {
            cmd.arg(setpriv).args(["--pdeathsig", "KILL"]);
        }
        cmd.arg(prog).stdin(Stdio::null());
        cmd
    }

    /// Cuts the hosts of `minority` off from the others, which stay connected among
    /// themselves, and so do the hosts of `minority`.
    pub fn partition(&self, minority: &[usize]) -> Result<()> {
        for k in 1..=self.hosts {
            let side = if minority.contains(&k) { "br1" } else { "br0" };
            self.hub_ip(&["link", "set", &format!("v{k}"), "master", side])?;
        }
        self.hub_ip(&["link", "set", "t0", "down"]).map(drop)
    }

    /// Joins the two sides again.
    pub fn heal(&self) -> Result<()> {
        self.hub_ip(&["link", "set", "t0", "up"]).map(drop)
    }

    /// What names of this run start with (see [`remains_of`]).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Hosts first, the hub last.
        for ns in self.made.iter().rev() {
            delete_ns(ns);
        }
        for k in 1..=self.hosts {
            let _ = std::fs::remove_dir_all(etc_dir(&self.ns(k)));
        }
        // Only when empty (another run may be using it): an empty `/etc/netns` means
        // nothing to `ip netns exec`, and one left by two runs that overlapped (the
        // first to start made it, the last to finish did not) would otherwise stay.
        let _ = std::fs::remove_dir(ETC);
    }
}

/// What of the run named `prefix` exists: its namespaces, and its `/etc/netns` folders.
pub fn remains_of(prefix: &str) -> Vec<String> {
    let mut found: Vec<String> = ip(&["netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("{prefix}-")))
        .map(|n| format!("namespace {n}"))
        .collect();
    if let Ok(dir) = std::fs::read_dir(ETC) {
        found.extend(
            dir.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&format!("{prefix}-")))
                .map(|n| format!("{ETC}/{n}")),
        );
    }
    found
}

/// Where `ip netns exec NS` finds the files it mounts over `/etc`.
fn etc_dir(ns: &str) -> PathBuf {
    Path::new(ETC).join(ns)
}

/// Writes `/etc/netns/NS/hosts` (trying again should a concurrent run's drop remove an
/// empty `/etc/netns` in between).
fn write_hosts(ns: &str, text: &str) -> Result<()> {
    let etc = etc_dir(ns);
    let mut tries = 0;
    loop {
        let done =
            std::fs::create_dir_all(&etc).and_then(|()| std::fs::write(etc.join("hosts"), text));
        match done {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 3 => tries += 1,
            Err(e) => {
                return Err(e).with_context(|| format!("cannot write {}/hosts", etc.display()))
            }
        }
    }
}

/// Kills what runs in `ns` (only processes a test started there) and deletes it.
fn delete_ns(ns: &str) {
    if let Ok(pids) = ip(&["netns", "pids", ns]) {
        for pid in pids.split_whitespace().filter_map(|p| p.parse().ok()) {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
    let _ = ip(&["netns", "del", ns]);
}

/// The pid of the test process that named `name` (`qh<pid>n<seq>-…`).
fn owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(TAG)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    rest[digits.len()..].starts_with('n').then_some(())?;
    digits.parse().ok()
}

/// Removes the namespaces and `/etc/netns` folders that an earlier run, whose process
/// is gone, left behind (a test killed before its drop ran). Those of live processes
/// are left alone.
fn remove_stale() {
    let dead =
        |name: &str| owner(name).is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
    let listed = ip(&["netns", "list"]).unwrap_or_default();
    let mut names: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| dead(n))
        .collect();
    // Hosts before hubs, so that no veth pair outlives its bridge for long.
    names.sort_by_key(|n| n.ends_with("-hub"));
    for name in names {
        delete_ns(name);
    }
    if let Ok(dir) = std::fs::read_dir(ETC) {
        for e in dir.filter_map(|e| e.ok()) {
            if dead(&e.file_name().to_string_lossy()) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}
