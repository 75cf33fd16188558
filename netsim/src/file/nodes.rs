//! Node names, ranges, sites and roles, and the node sets a file writes with them.

use std::collections::{BTreeMap, HashMap};

use crate::net::NodeIdx;

use super::format::{NodeSpec, TwinSpec};

/// Every node of a file by name, with its sites and roles.
#[derive(Debug, Default)]
pub struct Nodes {
    /// Names by index (the base nodes, then the twins).
    pub names: Vec<String>,
    index: HashMap<String, NodeIdx>,
    /// Base nodes (twins come after).
    pub base: usize,
    sites: BTreeMap<String, Vec<NodeIdx>>,
    /// Nodes with the voter role.
    pub voters: Vec<NodeIdx>,
    candidates: Vec<NodeIdx>,
    /// For twin `k`, the node whose id it runs with.
    pub twin_of: Vec<NodeIdx>,
}

/// The names of a range `"s1..s12"` (both ends included).
pub fn expand_range(r: &str) -> Option<Vec<String>> {
    let (a, b) = r.split_once("..")?;
    let split = |s: &str| {
        let at = s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (p, n) = s.split_at(at);
        Some((p.to_owned(), n.parse::<u64>().ok()?))
    };
    let ((pa, na), (pb, nb)) = (split(a.trim())?, split(b.trim())?);
    if pa != pb || nb < na || nb - na > 1_000_000 {
        return None;
    }
    Some((na..=nb).map(|k| format!("{pa}{k}")).collect())
}

const ROLES: &[&str] = &["voter", "candidate", "member"];
const RESERVED: &[&str] = &["all", "voters", "candidates", "members", "leader"];

impl Nodes {
    /// Declares a node entry's nodes.
    pub fn add(&mut self, spec: &NodeSpec) -> Result<(), String> {
        let names = match (&spec.name, &spec.names) {
            (Some(n), None) => vec![n.clone()],
            (None, Some(r)) => expand_range(r).ok_or_else(|| {
                format!("expected a range of names such as \"s1..s12\", found {r:?}")
            })?,
            _ => return Err("expected exactly one of `name` or `names`".into()),
        };
        let roles = spec.role.as_ref().map(|r| r.items()).unwrap_or_default();
        if let Some(bad) = roles.iter().find(|r| !ROLES.contains(r)) {
            return Err(format!("unknown role {bad:?}; expected one of {ROLES:?}"));
        }
        for name in names {
            let i = self.push(name)?;
            self.base += 1;
            if roles.contains(&"voter") {
                self.voters.push(i);
            }
            if roles.contains(&"candidate") {
                self.candidates.push(i);
            }
            if let Some(site) = &spec.site {
                self.sites.entry(site.clone()).or_default().push(i);
            }
        }
        Ok(())
    }

    /// Declares a second process of a node (after every base node).
    pub fn add_twin(&mut self, spec: &TwinSpec) -> Result<(), String> {
        let of = self.one(&spec.of)?;
        if of as usize >= self.base {
            return Err(format!("{:?} is a twin itself", spec.of));
        }
        self.push(spec.name.clone())?;
        self.twin_of.push(of);
        Ok(())
    }

    fn push(&mut self, name: String) -> Result<NodeIdx, String> {
        if RESERVED.contains(&name.as_str()) || self.sites.contains_key(&name) {
            return Err(format!("{name:?} is reserved or a site's name"));
        }
        if name.is_empty() || name.contains("..") {
            return Err(format!("{name:?} is not a valid node name"));
        }
        let i = self.names.len() as NodeIdx;
        if self.index.insert(name.clone(), i).is_some() {
            return Err(format!("node {name:?} is declared twice"));
        }
        self.names.push(name);
        Ok(i)
    }

    /// The one node named `name`.
    pub fn one(&self, name: &str) -> Result<NodeIdx, String> {
        self.index.get(name).copied().ok_or_else(|| {
            let known = match self.names.len() {
                0..=8 => self.names.join(", "),
                _ => format!("{} .. {}", self.names[0], self.names[self.names.len() - 1]),
            };
            format!("unknown node {name:?} (nodes: {known})")
        })
    }

    /// The nodes of a set, in index order, each once.
    pub fn resolve(&self, items: &[&str]) -> Result<Vec<NodeIdx>, String> {
        let mut out = Vec::new();
        for &item in items {
            match item {
                "all" => out.extend(0..self.base as NodeIdx),
                "voters" => out.extend(&self.voters),
                "candidates" => out.extend(&self.candidates),
                "members" => {
                    out.extend((0..self.base as NodeIdx).filter(|i| !self.voters.contains(i)))
                }
                "leader" => return Err("\"leader\" is not a fixed set of nodes here".into()),
                _ if self.sites.contains_key(item) => out.extend(&self.sites[item]),
                _ if item.contains("..") => {
                    let names = expand_range(item).ok_or_else(|| {
                        format!("expected a range such as \"n1..n5\", found {item:?}")
                    })?;
                    for n in names {
                        out.push(self.one(&n)?);
                    }
                }
                _ => out.push(self.one(item)?),
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// A name for node `i`.
    pub fn name(&self, i: NodeIdx) -> String {
        self.names
            .get(i as usize)
            .cloned()
            .unwrap_or_else(|| format!("#{i}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(
            expand_range("s8..s10"),
            Some(vec!["s8".into(), "s9".into(), "s10".into()])
        );
        assert_eq!(expand_range("a1..b2"), None);
        assert_eq!(expand_range("s3..s1"), None);
    }
}
