//! What the `quorate` command shares with other front ends (the Python package): the
//! cluster directory that `quorate init` writes ([`cluster`], [`init`], [`cert`]) and how
//! events are named and printed, as text or JSON ([`view`]).

use std::path::PathBuf;

pub mod cert;
pub mod cluster;
pub mod init;
pub mod view;

/// `--dir` values: a directory, not empty.
pub fn parse_dir(s: &str) -> Result<PathBuf, String> {
    if s.is_empty() {
        return Err("the directory must not be empty".into());
    }
    Ok(PathBuf::from(s))
}
