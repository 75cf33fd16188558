//! Members and events: `Member`, and `EventStream`, whose events are dicts named and
//! shaped as `quorate node --json` prints them (the names come from
//! `quorate_cli::view`), with the raw bytes of metadata and capabilities added.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use quorate::{Event, GroupEvent, MemberEvent};
use quorate_cli::view::{self, Reporter};
use serde_json::{Map, Value};

use crate::{errors, wait};

/// A member as a node sees it (a snapshot: it does not change).
#[pyclass(frozen, module = "quorate._quorate")]
pub(crate) struct Member {
    id: u64,
    addr: String,
    state: &'static str,
    incarnation: u64,
    metadata: Vec<u8>,
}

impl Member {
    pub(crate) fn new(m: &quorate::Member) -> Self {
        Member {
            id: m.id.0,
            addr: m.addr.to_string(),
            state: view::state_name(m.state),
            incarnation: m.incarnation,
            metadata: m.meta.clone(),
        }
    }
}

#[pymethods]
impl Member {
    /// The member's node id.
    #[getter]
    fn id(&self) -> u64 {
        self.id
    }

    /// Where it listens, as `"IP:PORT"`.
    #[getter]
    fn addr(&self) -> &str {
        &self.addr
    }

    /// Its state: `"alive"`, `"suspect"`, `"failed"` or `"left"`.
    #[getter]
    fn state(&self) -> &'static str {
        self.state
    }

    /// Its incarnation (raised by the member itself to refute a suspicion or publish
    /// new metadata).
    #[getter]
    fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// The metadata it publishes (empty until known).
    #[getter]
    fn metadata<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.metadata)
    }

    fn __repr__(&self) -> String {
        format!(
            "Member(id={}, addr={}, state={}, incarnation={}, metadata={})",
            self.id,
            crate::quote(&self.addr),
            crate::quote(self.state),
            self.incarnation,
            bytes_repr(&self.metadata)
        )
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<Member>().is_ok_and(|o| {
            let o = o.get();
            (o.id, &o.addr, o.state, o.incarnation, &o.metadata)
                == (
                    self.id,
                    &self.addr,
                    self.state,
                    self.incarnation,
                    &self.metadata,
                )
        })
    }

    fn __hash__(&self) -> u64 {
        self.id ^ self.incarnation.rotate_left(32)
    }
}

/// `b'...'` as Python writes it (ASCII printable as is, the rest escaped).
fn bytes_repr(b: &[u8]) -> String {
    let mut s = String::from("b'");
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'\'' => s.push_str("\\'"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push('\'');
    s
}

/// One event ready for Python: the kind and JSON fields as `quorate node --json` prints
/// them, and fields carried as bytes.
pub(crate) struct Described {
    kind: &'static str,
    fields: Map<String, Value>,
    bytes: Vec<(&'static str, Vec<u8>)>,
}

/// Describes `event`; `None` for events the JSON output does not report.
fn describe(reporter: &mut Reporter, event: &Event) -> Option<Described> {
    if let Event::Group(g) = event {
        let (kind, fields) = view::describe_group(g);
        let bytes = match g {
            GroupEvent::Joined { capabilities, .. }
            | GroupEvent::CapabilitiesUpdated { capabilities, .. } => {
                vec![("capabilities", capabilities.clone())]
            }
            _ => Vec::new(),
        };
        return Some(Described {
            kind,
            fields,
            bytes,
        });
    }
    let (kind, fields) = reporter.describe(event)?;
    let bytes = match event {
        Event::Member(MemberEvent::Joined(m) | MemberEvent::Alive(m) | MemberEvent::Updated(m)) => {
            vec![("metadata", m.meta.clone())]
        }
        _ => Vec::new(),
    };
    Some(Described {
        kind,
        fields,
        bytes,
    })
}

/// A JSON value as a Python object.
fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u.into_pyobject(py)?.into_any(),
            (None, Some(i)) => i.into_pyobject(py)?.into_any(),
            _ => n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(a) => {
            let items = a
                .iter()
                .map(|v| to_py(py, v))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Value::Object(o) => fields_dict(py, o)?.into_any(),
    })
}

fn fields_dict<'py>(py: Python<'py>, o: &Map<String, Value>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in o {
        d.set_item(k, to_py(py, v)?)?;
    }
    Ok(d)
}

impl Described {
    /// `{"ts_ms": ..., "node": ..., "event": kind, **fields}`, bytes fields as bytes.
    fn into_dict(self, py: Python<'_>, node: u64) -> PyResult<Bound<'_, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("ts_ms", view::now_ms())?;
        d.set_item("node", node)?;
        d.set_item("event", self.kind)?;
        for (k, v) in &self.fields {
            d.set_item(k, to_py(py, v)?)?;
        }
        for (k, v) in self.bytes {
            d.set_item(k, PyBytes::new(py, &v))?;
        }
        Ok(d)
    }
}

/// What an `EventStream` reads: the node's stream and the reporter that names events.
struct Reader {
    stream: quorate::EventStream,
    reporter: Reporter,
}

/// A subscription to a node's events (`Node.events()`), each a dict as `quorate node
/// --json` prints it.
#[pyclass(frozen, module = "quorate._quorate")]
pub(crate) struct EventStream {
    node: u64,
    reader: Arc<tokio::sync::Mutex<Option<Reader>>>,
    lagged: Arc<AtomicU64>,
    ended: Arc<AtomicBool>,
}

impl EventStream {
    pub(crate) fn new(node: u64, stream: quorate::EventStream, renewals: bool) -> Self {
        EventStream {
            node,
            reader: Arc::new(tokio::sync::Mutex::new(Some(Reader {
                stream,
                reporter: Reporter::new(renewals),
            }))),
            lagged: Arc::new(AtomicU64::new(0)),
            ended: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The next reported event within `timeout`: `Ok(None)` on timeout, `Err` with
    /// `NodeStopped` once the node stopped and every event was read.
    fn read(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Described>> {
        let (reader, lagged) = (self.reader.clone(), self.lagged.clone());
        let next = wait(py, crate::duration(timeout)?, async move {
            let mut guard = reader.lock().await;
            let r = guard.as_mut()?;
            loop {
                let event = r.stream.recv().await;
                lagged.store(r.stream.lagged(), Ordering::Relaxed);
                match event {
                    Some(e) => {
                        if let Some(d) = describe(&mut r.reporter, &e) {
                            return Some(d);
                        }
                    }
                    None => {
                        *guard = None;
                        return None;
                    }
                }
            }
        })?;
        match next {
            None => Ok(None),
            Some(Some(d)) => Ok(Some(d)),
            Some(None) => {
                self.ended.store(true, Ordering::Relaxed);
                Err(errors::stopped())
            }
        }
    }
}

#[pymethods]
impl EventStream {
    /// The next event as a dict, waiting at most `timeout` seconds (`None`: until one
    /// comes). Returns `None` on timeout; raises `NodeStopped` once the node has
    /// stopped and every event was read.
    #[pyo3(signature = (timeout = None))]
    fn next<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.read(py, timeout)?
            .map(|d| d.into_dict(py, self.node))
            .transpose()
    }

    /// Events this subscriber lost because it fell behind (the node never waits for a
    /// reader; read `Node.members()` to resynchronise).
    #[getter]
    fn lagged(&self) -> u64 {
        self.lagged.load(Ordering::Relaxed)
    }

    /// Whether the node has stopped and every event was read.
    #[getter]
    fn closed(&self) -> bool {
        self.ended.load(Ordering::Relaxed)
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Blocks until the next event; ends once the node has stopped.
    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        match self.read(py, None) {
            Ok(d) => d.map(|d| d.into_dict(py, self.node)).transpose(),
            Err(e) if e.is_instance_of::<errors::NodeStopped>(py) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Adds `Member` and `EventStream`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Member>()?;
    m.add_class::<EventStream>()
}
