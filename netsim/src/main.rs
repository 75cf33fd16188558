//! The `quorate-netsim` command.
fn main() {}
