//! Durable terms: the highest term this node granted per group as a voter, kept in
//! `<data_dir>/terms` so that a restarted voter never grants a term at or below one it
//! granted before (its restart quarantine covers the promises; this covers the terms).
//!
//! The file is text: a header line, then one `<term> <group>` line per group (group
//! names have no control characters, so a line ends the name). It is replaced whole on
//! every change (written to `terms.tmp`, synced, renamed over), so a crash leaves the
//! old or the new version, never a mix. The driver writes it inline, before the grant
//! that raised the term is sent: a few bytes per group, once per new term. At most `max` groups are kept; beyond that the
//! lowest terms are dropped (a voter tracks at most `max_groups` groups anyway).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::election::Term;
use crate::groups::check_name;

/// First line of the file.
const HEADER: &str = "quorate terms v1";
/// The file's name in the data directory.
const FILE: &str = "terms";

/// The terms file of one data directory, and its contents.
#[derive(Debug)]
pub(crate) struct TermStore {
    path: PathBuf,
    terms: BTreeMap<String, Term>,
    max: usize,
}

impl TermStore {
    /// Opens (creating the directory if needed) and reads `dir/terms`; a missing file
    /// is an empty record. Errors say what is wrong with which path.
    pub fn open(dir: &Path, max: usize) -> Result<Self, (PathBuf, String)> {
        fs::create_dir_all(dir).map_err(|e| (dir.to_owned(), e.to_string()))?;
        let path = dir.join(FILE);
        let terms = match fs::read_to_string(&path) {
            Ok(text) => parse(&text).map_err(|reason| (path.clone(), reason))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err((path, e.to_string())),
        };
        Ok(TermStore { path, terms, max })
    }

    /// Every group's highest granted term.
    pub fn terms(&self) -> &BTreeMap<String, Term> {
        &self.terms
    }

    /// Records that `term` was granted for `group` and saves when it is new. A failed
    /// save is logged (the voter keeps running on what it knows in memory).
    pub fn record(&mut self, group: &str, term: Term) {
        if self.terms.get(group).is_some_and(|t| *t >= term) {
            return;
        }
        self.terms.insert(group.to_owned(), term);
        while self.terms.len() > self.max.max(1) {
            let lowest = self
                .terms
                .iter()
                .min_by_key(|(g, t)| (**t, (*g).clone()))
                .map(|(g, _)| g.clone());
            match lowest {
                Some(g) => self.terms.remove(&g),
                None => break,
            };
        }
        if let Err(e) = self.save() {
            tracing::error!(path = %self.path.display(), error = %e, "cannot persist granted term");
        }
    }

    fn save(&self) -> std::io::Result<()> {
        let mut text = String::with_capacity(32 + self.terms.len() * 24);
        text.push_str(HEADER);
        text.push('\n');
        for (g, t) in &self.terms {
            text.push_str(&format!("{t} {g}\n"));
        }
        let tmp = self.path.with_extension("tmp");
        let mut f = fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            // Makes the rename durable where directories can be synced (not Windows).
            let _ = fs::File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(())
    }
}

/// Reads the file's text.
fn parse(text: &str) -> Result<BTreeMap<String, Term>, String> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(format!("not a terms file (first line is not {HEADER:?})"));
    }
    let mut terms = BTreeMap::new();
    for (i, line) in lines.enumerate() {
        let bad = |why: &str| format!("line {}: {why}", i + 2);
        let (t, g) = line
            .split_once(' ')
            .ok_or_else(|| bad("expected `<term> <group>`"))?;
        let t: Term = t.parse().map_err(|_| bad("bad term"))?;
        check_name(g).map_err(|_| bad("bad group name"))?;
        if terms.insert(g.to_owned(), t).is_some() {
            return Err(bad("group listed twice"));
        }
    }
    Ok(terms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("quorate-terms-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn terms_survive_a_reopen_and_only_rise() {
        let dir = temp_dir("roundtrip");
        let mut s = TermStore::open(&dir, 8).unwrap();
        assert!(s.terms().is_empty());
        s.record("g", 3);
        s.record("a group with spaces", 7);
        s.record("g", 2);
        let s = TermStore::open(&dir, 8).unwrap();
        assert_eq!(s.terms().get("g"), Some(&3));
        assert_eq!(s.terms().get("a group with spaces"), Some(&7));
        assert!(!dir.join("terms.tmp").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_record_is_bounded_by_dropping_the_lowest_terms() {
        let dir = temp_dir("bounded");
        let mut s = TermStore::open(&dir, 2).unwrap();
        s.record("a", 5);
        s.record("b", 1);
        s.record("c", 9);
        let s = TermStore::open(&dir, 2).unwrap();
        let kept: Vec<_> = s.terms().iter().map(|(g, t)| (g.as_str(), *t)).collect();
        assert_eq!(kept, vec![("a", 5), ("c", 9)]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_the_problem() {
        let dir = temp_dir("corrupt");
        fs::create_dir_all(&dir).unwrap();
        for (text, want) in [
            ("garbage", "not a terms file"),
            ("quorate terms v1\nx g\n", "line 2: bad term"),
            ("quorate terms v1\n4\n", "line 2: expected"),
            ("quorate terms v1\n4 g\n5 g\n", "line 3: group listed twice"),
            ("quorate terms v1\n4 \n", "line 2: bad group name"),
        ] {
            fs::write(dir.join(FILE), text).unwrap();
            let (path, reason) = TermStore::open(&dir, 8).unwrap_err();
            assert_eq!(path, dir.join(FILE));
            assert!(reason.contains(want), "{text:?}: {reason}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
