//! Replays the stored fuzzing corpus (`fuzz/corpus/<target>/`) through the same
//! harnesses the cargo-fuzz targets run, so a plain `cargo test` keeps every input the
//! fuzzers found interesting passing (a panic is a finding).

// The corpus is files, and the identity harness writes PEM fixtures.
#![allow(clippy::disallowed_methods)]

#[path = "../fuzz/src/harness/mod.rs"]
#[allow(dead_code)] // the harness module exports more than the replay uses
mod harness;

use std::fs;
use std::path::{Path, PathBuf};

/// Every file of the corpus of `target`, sorted.
fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `harness` on every corpus file of `target`, naming the file that fails.
fn replay(target: &str, harness: fn(&[u8])) {
    let files = corpus(target);
    assert!(!files.is_empty(), "the {target} corpus is empty");
    for path in files {
        let data = fs::read(&path).expect("a corpus file reads");
        let run = std::panic::catch_unwind(|| harness(&data));
        assert!(run.is_ok(), "{target}: {} fails", path.display());
    }
}

#[test]
fn wire_decode_corpus() {
    replay("wire_decode", harness::wire_decode);
}

#[test]
fn engine_corpus() {
    replay("engine", harness::engine);
}

#[test]
fn identity_corpus() {
    replay("identity", harness::identity);
}
