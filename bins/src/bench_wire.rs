//! `quorate bench --wire`: what the nodes put on the wire, IP and UDP headers included.
//!
//! Each node counts the packets its own UDP socket sends (`wire_packets_out`,
//! `wire_bytes_out`: every QUIC packet, handshakes and acknowledgements included, 28
//! header bytes each over IPv4). The kernel's own counts over the same window are
//! read alongside as a cross-check: the loopback device's transmitted bytes (IP
//! packets, headers included) and UDP's `OutDatagrams` (/proc/net/snmp). Those count
//! everything on the machine, so they agree with the nodes' only while nothing else
//! uses loopback.

/// The kernel's counters at one instant.
#[derive(Clone, Copy, Debug, Default)]
pub struct Kernel {
    /// Bytes the loopback device transmitted (IP packets, headers included).
    pub lo_bytes: u64,
    /// Packets the loopback device transmitted (any protocol).
    pub lo_packets: u64,
    /// UDP datagrams sent by the whole machine.
    pub udp_out: u64,
}

impl Kernel {
    /// Reads the counters; zeros where /proc does not have them.
    pub fn now() -> Kernel {
        let dev = std::fs::read_to_string("/proc/net/dev").unwrap_or_default();
        let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
        let (lo_bytes, lo_packets) = lo_tx(&dev).unwrap_or_default();
        Kernel {
            lo_bytes,
            lo_packets,
            udp_out: udp_out_datagrams(&snmp).unwrap_or_default(),
        }
    }

    /// The counts from `self` to `later`.
    pub fn since(self, later: Kernel) -> Kernel {
        Kernel {
            lo_bytes: later.lo_bytes.saturating_sub(self.lo_bytes),
            lo_packets: later.lo_packets.saturating_sub(self.lo_packets),
            udp_out: later.udp_out.saturating_sub(self.udp_out),
        }
    }
}

/// Transmitted bytes and packets of `lo` in a /proc/net/dev text.
fn lo_tx(dev: &str) -> Option<(u64, u64)> {
    let line = dev.lines().find(|l| l.trim_start().starts_with("lo:"))?;
    let f: Vec<u64> = line
        .split_once(':')?
        .1
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    Some((*f.get(8)?, *f.get(9)?))
}

/// UDP's OutDatagrams in a /proc/net/snmp text (a header line, then a value line).
fn udp_out_datagrams(snmp: &str) -> Option<u64> {
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let i = names.split_whitespace().position(|n| n == "OutDatagrams")?;
    values.split_whitespace().nth(i)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_kernel_counters() {
        let dev = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets\n    lo: 10 2 0 0 0 0 0 0 300 4 0 0 0 0 0 0\n  eth0: 1 1 0 0 0 0 0 0 9 9 0 0 0 0 0 0\n";
        assert_eq!(lo_tx(dev), Some((300, 4)));
        let snmp = "Udp: InDatagrams NoPorts InErrors OutDatagrams\nUdp: 5 0 0 77\nUdpLite: InDatagrams\nUdpLite: 0\n";
        assert_eq!(udp_out_datagrams(snmp), Some(77));
        assert_eq!(lo_tx("garbage"), None);
        assert_eq!(udp_out_datagrams(""), None);
    }
}
