//! Rust `Debug` text as JSON, for the trace: `Elected { group: "g", term: 3 }` becomes
//! `{"Elected": {"group": "g", "term": 3}}` (structs and enum variants tagged by name,
//! one-field tuples `Name(x)` as `{"Name": x}`, `Some(x)` as `x`, `None` as null,
//! `NodeId(7)` as 7; numbers, booleans, strings, lists, tuples and maps as such;
//! anything else, such as an address or a duration, as its text).

use serde_json::{Map, Value};

use crate::scenario::Action;

/// `text`, the `Debug` output of a value, as JSON (the text itself when it does not
/// parse).
pub fn to_json(text: &str) -> Value {
    let mut p = Parser {
        s: text.as_bytes(),
        at: 0,
    };
    match p.value() {
        Some(v) if p.rest_is_blank() => v,
        _ => Value::String(text.to_owned()),
    }
}

/// A scenario action's trace fields: `"type":"action"`, the node it acts on (by id)
/// and the action.
pub fn action_fields(a: &Action) -> String {
    let json = to_json(&format!("{a:?}"));
    match action_node(a) {
        Some(i) => {
            let id = u64::from(i) + 1;
            let json = with_node_id(json, id);
            format!(r#""type":"action","node":{id},"action":{json}"#)
        }
        None => format!(r#""type":"action","action":{json}"#),
    }
}

/// The one node an action acts on, if any.
fn action_node(a: &Action) -> Option<crate::net::NodeIdx> {
    match *a {
        Action::Join(i) | Action::Crash(i) | Action::Restart(i) | Action::Leave(i) => Some(i),
        Action::Unslow(i) | Action::Campaign(i) | Action::Resign(i) => Some(i),
        Action::Pause { node, .. } | Action::Slow { node, .. } => Some(node),
        Action::Drift { node, .. } | Action::Lie { node, .. } => Some(node),
        _ => None,
    }
}

/// A scenario action's JSON with its node given by id: `{"Crash": 0}` becomes
/// `"Crash"` (the record names the node), a `node` field becomes `id`.
pub fn with_node_id(v: Value, id: u64) -> Value {
    let Value::Object(m) = v else { return v };
    match m.into_iter().next() {
        Some((k, Value::Number(_))) => Value::String(k),
        Some((k, Value::Object(mut fields))) => {
            if fields.contains_key("node") {
                fields.insert("node".into(), id.into());
            }
            tagged(&k, Value::Object(fields))
        }
        Some((k, other)) => tagged(&k, other),
        None => Value::Object(Map::new()),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn peek(&mut self) -> Option<u8> {
        while self.s.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
        self.s.get(self.at).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let yes = self.peek() == Some(c);
        self.at += usize::from(yes);
        yes
    }

    fn rest_is_blank(&mut self) -> bool {
        self.peek().is_none()
    }

    fn value(&mut self) -> Option<Value> {
        match self.peek()? {
            b'"' => self.string().map(Value::String),
            b'[' => {
                self.at += 1;
                self.items(b']').map(Value::Array)
            }
            b'(' => {
                self.at += 1;
                self.items(b')').map(Value::Array)
            }
            b'{' => {
                self.at += 1;
                self.brace()
            }
            _ => self.atom_value(),
        }
    }

    /// A comma-separated list up to `end` (a trailing comma allowed).
    fn items(&mut self, end: u8) -> Option<Vec<Value>> {
        let mut out = Vec::new();
        while !self.eat(end) {
            out.push(self.value()?);
            if !self.eat(b',') && self.peek() != Some(end) {
                return None;
            }
        }
        Some(out)
    }

    /// After a brace: struct fields (bare names), map entries, or a set's items.
    fn brace(&mut self) -> Option<Value> {
        let mut out = Map::new();
        let mut set = Vec::new();
        while !self.eat(b'}') {
            let key = self.value()?;
            if self.eat(b':') && set.is_empty() {
                let k = key.as_str().map_or_else(|| key.to_string(), str::to_owned);
                out.insert(k, self.value()?);
            } else if out.is_empty() {
                set.push(key);
            } else {
                return None;
            }
            if !self.eat(b',') && self.peek() != Some(b'}') {
                return None;
            }
        }
        Some(match set.is_empty() {
            true => Value::Object(out),
            false => Value::Array(set),
        })
    }

    fn string(&mut self) -> Option<String> {
        self.at += 1;
        let mut out = String::new();
        let mut chars = std::str::from_utf8(&self.s[self.at..]).ok()?.char_indices();
        while let Some((k, c)) = chars.next() {
            match c {
                '"' => {
                    self.at += k + 1;
                    return Some(out);
                }
                '\\' => match chars.next()?.1 {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '0' => out.push('\0'),
                    other => out.push(other),
                },
                c => out.push(c),
            }
        }
        None
    }

    /// A run of characters up to a delimiter (a colon counts only before a blank, so
    /// `10.0.0.1:7000` is one atom).
    fn atom(&mut self) -> &str {
        let start = self.at;
        while let Some(&c) = self.s.get(self.at) {
            let colon_sep = c == b':'
                && self
                    .s
                    .get(self.at + 1)
                    .map_or(true, |n| !n.is_ascii_alphanumeric());
            if b",(){}[]\"".contains(&c) || c.is_ascii_whitespace() || colon_sep {
                break;
            }
            self.at += 1;
        }
        std::str::from_utf8(&self.s[start..self.at]).unwrap_or_default()
    }

    fn atom_value(&mut self) -> Option<Value> {
        let word = self.atom().to_owned();
        if word.is_empty() {
            return None;
        }
        let ident = word.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if ident && self.peek() == Some(b'{') {
            self.at += 1;
            return Some(tagged(&word, self.brace()?));
        }
        if ident && self.peek() == Some(b'(') {
            self.at += 1;
            let mut args = self.items(b')')?;
            let inner = match args.len() {
                1 => args.pop()?,
                _ => Value::Array(args),
            };
            return Some(match word.as_str() {
                "Some" | "NodeId" => inner,
                _ => tagged(&word, inner),
            });
        }
        Some(match word.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            "None" => Value::Null,
            _ => number(&word).unwrap_or(Value::String(word)),
        })
    }
}

fn tagged(name: &str, v: Value) -> Value {
    let mut m = Map::new();
    m.insert(name.to_owned(), v);
    Value::Object(m)
}

fn number(w: &str) -> Option<Value> {
    if let Ok(u) = w.parse::<u64>() {
        return Some(u.into());
    }
    if let Ok(i) = w.parse::<i64>() {
        return Some(i.into());
    }
    let f = w.parse::<f64>().ok().filter(|f| f.is_finite())?;
    serde_json::Number::from_f64(f).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn debug_text_becomes_json() {
        let t = r#"Elected { group: "g\"x", term: 3, deadline: Instant { tv_sec: 1, tv_nsec: 5 }, by: Some(NodeId(7)), at: 10.0.0.1:7000, d: 1.5s, v: [1, 2], none: None }"#;
        assert_eq!(
            to_json(t),
            json!({"Elected": {"group": "g\"x", "term": 3,
                "deadline": {"Instant": {"tv_sec": 1, "tv_nsec": 5}},
                "by": 7, "at": "10.0.0.1:7000", "d": "1.5s", "v": [1, 2], "none": null}})
        );
        assert_eq!(to_json("Heal"), json!("Heal"));
        assert_eq!(to_json("Crash(3)"), json!({"Crash": 3}));
        assert_eq!(to_json("Groups([0, 1])"), json!({"Groups": [0, 1]}));
        assert_eq!(to_json("{(1, 2), (3, 4)}"), json!([[1, 2], [3, 4]]));
        assert_eq!(
            to_json("Links({(1, 2): 3})"),
            json!({"Links": {"[1,2]": 3}})
        );
        assert_eq!(to_json("Foo {"), json!("Foo {"));
    }
}
