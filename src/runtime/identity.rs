//! Cluster identities: a cluster certificate authority and the node and client
//! certificates it issues.
//!
//! Every connection between quorate nodes is mutual TLS. A node trusts exactly one root,
//! its cluster's CA, and learns who is on the other end from the peer's certificate:
//!
//! - a **node certificate** binds a [`NodeId`] as the DNS subject alternative name
//!   `node-<id>.quorate` (plus `member.quorate`, the name a node dials when it only knows
//!   a seed's address). It is valid for both TLS client and server authentication;
//! - a **client certificate** (for admin and status tools) carries
//!   `client-<name>.quorate` and is valid for TLS client authentication only. A node
//!   answers status queries from it but never takes it as a member.
//!
//! Certificates and keys are PEM files. Loading checks that the key matches the
//! certificate and that the certificate was issued by the given CA, and every error names
//! the file at fault.
//!
//! ```
//! use quorate::{ClusterCa, NodeId};
//!
//! let ca = ClusterCa::generate("prod").unwrap();
//! let node = ca.issue_node(NodeId(7)).unwrap();
//! assert_eq!(node.node_id(), Some(NodeId(7)));
//! let admin = ca.issue_client("ops").unwrap();
//! assert_eq!(admin.node_id(), None);
//! ```

// Identities are PEM files: reading and writing them is this module's job.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};

use crate::wire::{NodeId, MAX_CLUSTER_NAME};

/// DNS name every node certificate carries besides its own: what a node dials when it
/// knows an address (a seed) but not yet the id there.
pub const MEMBER_SERVER_NAME: &str = "member.quorate";

/// How long the certificates a [`ClusterCa`] issues are valid unless
/// [`ClusterCa::with_validity`] says otherwise: 365 days.
pub const DEFAULT_CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// How far back a new certificate's validity starts, so that a host whose clock is
/// somewhat behind the issuer's accepts it at once: one hour.
const BACKDATE: Duration = Duration::from_secs(3600);

/// The DNS name that binds `id` in a node certificate, and the TLS server name used to
/// dial a known node (so the handshake fails unless the certificate is that node's).
pub fn node_server_name(id: NodeId) -> String {
    format!("node-{id}.quorate")
}

fn client_dns_name(name: &str) -> String {
    format!("client-{name}.quorate")
}

/// What a certificate says about its holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerKind {
    /// A cluster node with this id.
    Node(NodeId),
    /// An admin or status client with this name; never a member.
    Client(String),
}

/// Reads the node id or client name bound to a DER certificate; `None` when it carries
/// neither (or does not parse).
pub fn peer_kind(cert: &[u8]) -> Option<PeerKind> {
    let (_, x509) = x509_parser::parse_x509_certificate(cert).ok()?;
    let san = x509.subject_alternative_name().ok()??;
    let mut client = None;
    for name in &san.value.general_names {
        let x509_parser::extensions::GeneralName::DNSName(dns) = name else {
            continue;
        };
        let Some(label) = dns.strip_suffix(".quorate") else {
            continue;
        };
        if let Some(id) = label.strip_prefix("node-") {
            // A node certificate binds exactly one id: digits only, no sign, no spaces.
            if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
                if let Ok(id) = id.parse::<u64>() {
                    return Some(PeerKind::Node(NodeId(id)));
                }
            }
        } else if let Some(name) = label.strip_prefix("client-") {
            client.get_or_insert_with(|| name.to_owned());
        }
    }
    client.map(PeerKind::Client)
}

/// Why an identity operation failed. Nothing was written unless the variant says so.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A file could not be written; it may be missing or partly written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A file does not hold what was expected (PEM certificate, PEM private key, a CA).
    #[error("{}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The private key does not belong to the certificate.
    #[error("the key in {} does not match the certificate in {}", key.display(), cert.display())]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The certificate was not issued by the cluster CA (or is expired, or not valid for
    /// quorate).
    #[error("the certificate in {} is not valid under the CA in {}: {reason}", cert.display(), ca.display())]
    NotIssuedByCa {
        /// The certificate file.
        cert: PathBuf,
        /// The CA certificate file.
        ca: PathBuf,
        /// The verifier's reason.
        reason: String,
    },
    /// The certificate is not valid now: it expired, or its validity has not begun
    /// (check this host's clock). Nothing was loaded.
    #[error(
        "the certificate in {} is valid from {} until {}, not now ({}): {}",
        cert.display(), utc(*not_before), utc(*not_after), utc(*now),
        if now > not_after { "it expired; renew it (quorate cert renew)" }
        else { "it is not valid yet; check this host's clock" }
    )]
    OutsideValidity {
        /// The certificate file.
        cert: PathBuf,
        /// When its validity begins.
        not_before: SystemTime,
        /// When it ends.
        not_after: SystemTime,
        /// The time it was checked at.
        now: SystemTime,
    },
    /// A cluster or client name cannot be used.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Generating a key or certificate failed.
    #[error("certificate generation failed: {0}")]
    Generate(String),
    /// The TLS configuration could not be built from this identity.
    #[error("TLS setup failed: {0}")]
    Tls(String),
}

/// The certificate authority of one cluster: its certificate and private key.
///
/// Keep the key offline where possible: nodes only need the CA *certificate*
/// ([`ClusterCa::cert_pem`]) and their own identity.
pub struct ClusterCa {
    name: String,
    cert: CertificateDer<'static>,
    cert_pem: String,
    key: KeyPair,
    validity: Validity,
}

/// The validity of the certificates a CA issues.
#[derive(Clone, Copy, Debug)]
enum Validity {
    /// From an hour before issue, for this long.
    For(Duration),
    /// Between these times.
    Between(SystemTime, SystemTime),
}

impl fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterCa")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ClusterCa {
    /// A new CA (ECDSA P-256) for the cluster `cluster_name`.
    pub fn generate(cluster_name: &str) -> Result<ClusterCa, IdentityError> {
        if cluster_name.is_empty() || cluster_name.len() > MAX_CLUSTER_NAME {
            return Err(IdentityError::InvalidName {
                name: cluster_name.to_owned(),
                reason: format!("must be 1..={MAX_CLUSTER_NAME} bytes"),
            });
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(
            DnType::CommonName,
            format!("{cluster_name} quorate cluster CA"),
        );
        params
            .distinguished_name
            .push(DnType::OrganizationName, "quorate");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().map_err(gen_err)?;
        let cert = params.self_signed(&key).map_err(gen_err)?;
        Ok(ClusterCa {
            name: cluster_name.to_owned(),
            cert_pem: cert.pem(),
            cert: cert.der().clone(),
            key,
            validity: Validity::For(DEFAULT_CERT_VALIDITY),
        })
    }

    /// The CA issuing certificates valid for `validity` from now (less an hour, for
    /// hosts whose clocks are a little behind). Default [`DEFAULT_CERT_VALIDITY`]. A
    /// shorter validity limits how long a stolen key is of use, at the cost of renewing
    /// (`quorate cert renew`, then `Node::reload_identity`) more often.
    pub fn with_validity(mut self, validity: Duration) -> Self {
        self.validity = Validity::For(validity);
        self
    }

    /// The CA issuing certificates valid from `not_before` until `not_after` exactly
    /// (to line renewals up with a maintenance window, or to test expiry).
    pub fn with_validity_period(mut self, not_before: SystemTime, not_after: SystemTime) -> Self {
        self.validity = Validity::Between(not_before, not_after);
        self
    }

    /// The CA certificate and key, to sign with.
    pub(crate) fn parts(&self) -> (&CertificateDer<'static>, &KeyPair) {
        (&self.cert, &self.key)
    }

    /// Loads a CA from its PEM certificate and PEM private key.
    pub fn load(cert_pem: &Path, key_pem: &Path) -> Result<ClusterCa, IdentityError> {
        let cert = read_certs(cert_pem)?.remove(0);
        let (_, x509) = x509_parser::parse_x509_certificate(&cert)
            .map_err(|e| invalid(cert_pem, format!("not an X.509 certificate: {e}")))?;
        if !x509.is_ca() {
            return Err(invalid(cert_pem, "not a CA certificate".into()));
        }
        let name = x509
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(|cn| cn.trim_end_matches(" quorate cluster CA").to_owned())
            .unwrap_or_default();
        let spki = x509.public_key().subject_public_key.data.to_vec();
        let key_text = read_text(key_pem)?;
        let key = KeyPair::from_pem(&key_text)
            .map_err(|e| invalid(key_pem, format!("not a PEM private key: {e}")))?;
        if key.public_key_raw() != spki.as_slice() {
            return Err(IdentityError::KeyMismatch {
                cert: cert_pem.to_owned(),
                key: key_pem.to_owned(),
            });
        }
        Ok(ClusterCa {
            name,
            cert_pem: pem_encode("CERTIFICATE", &cert),
            cert,
            key,
            validity: Validity::For(DEFAULT_CERT_VALIDITY),
        })
    }

    /// Writes the CA certificate and key as PEM; the key file gets mode 0600 on unix.
    pub fn save(&self, cert_pem: &Path, key_pem: &Path) -> Result<(), IdentityError> {
        write_file(cert_pem, self.cert_pem.as_bytes(), false)?;
        write_file(key_pem, self.key.serialize_pem().as_bytes(), true)
    }

    /// The cluster name given at generation (from the certificate's common name).
    pub fn cluster_name(&self) -> &str {
        &self.name
    }

    /// The CA certificate as PEM: what every node and client needs to trust the cluster.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Writes only the CA certificate (no key), for distribution to nodes.
    pub fn save_cert(&self, cert_pem: &Path) -> Result<(), IdentityError> {
        write_file(cert_pem, self.cert_pem.as_bytes(), false)
    }

    /// Issues the certificate of node `id` (a fresh key pair).
    pub fn issue_node(&self, id: NodeId) -> Result<Identity, IdentityError> {
        let sans = vec![node_server_name(id), MEMBER_SERVER_NAME.to_owned()];
        let ekus = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        self.issue(
            &format!("quorate node {id}"),
            sans,
            ekus,
            PeerKind::Node(id),
        )
    }

    /// Issues a client certificate named `name` (lowercase letters, digits and `-`, at
    /// most 48 bytes), for admin and status tools. A node never takes it as a member.
    pub fn issue_client(&self, name: &str) -> Result<Identity, IdentityError> {
        let ok = !name.is_empty()
            && name.len() <= 48
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if !ok {
            return Err(IdentityError::InvalidName {
                name: name.to_owned(),
                reason: "use 1..=48 lowercase letters, digits or inner '-'".into(),
            });
        }
        let sans = vec![client_dns_name(name)];
        let ekus = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let kind = PeerKind::Client(name.to_owned());
        self.issue(&format!("quorate client {name}"), sans, ekus, kind)
    }

    fn issue(
        &self,
        cn: &str,
        sans: Vec<String>,
        ekus: Vec<ExtendedKeyUsagePurpose>,
        kind: PeerKind,
    ) -> Result<Identity, IdentityError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = sans
            .into_iter()
            .map(|s| s.try_into().map(SanType::DnsName))
            .collect::<Result<_, _>>()
            .map_err(gen_err)?;
        params.extended_key_usages = ekus;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        let (not_before, not_after) = match self.validity {
            Validity::For(d) => {
                let now = SystemTime::now();
                (now - BACKDATE, now + d)
            }
            Validity::Between(from, until) => (from, until),
        };
        params.not_before = asn1_time(not_before)?.to_datetime();
        params.not_after = asn1_time(not_after)?.to_datetime();
        let issuer = Issuer::from_ca_cert_der(&self.cert, &self.key).map_err(gen_err)?;
        let key = KeyPair::generate().map_err(gen_err)?;
        let cert = params.signed_by(&key, &issuer).map_err(gen_err)?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok(Identity {
            chain: vec![cert.der().clone()],
            key: Arc::new(key_der),
            ca: self.cert.clone(),
            kind,
            revocation: None,
        })
    }
}

/// A node's or client's credentials: its certificate chain, its private key and the
/// cluster CA certificate it trusts. Cheap to clone.
#[derive(Clone)]
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
    ca: CertificateDer<'static>,
    kind: PeerKind,
    /// The newest revocation list this identity's handshakes check peers against.
    revocation: Option<super::revocation::Revocation>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Loads a certificate (chain) and its key, trusting the CA certificate in `ca_pem`.
    ///
    /// Checks that the key matches the certificate, that the certificate was issued by the
    /// CA, and that it binds a node id or a client name.
    pub fn load(cert_pem: &Path, key_pem: &Path, ca_pem: &Path) -> Result<Identity, IdentityError> {
        let chain = read_certs(cert_pem)?;
        let ca = read_certs(ca_pem)?.remove(0);
        let key = PrivateKeyDer::from_pem_slice(read_text(key_pem)?.as_bytes())
            .map_err(|e| invalid(key_pem, format!("no PEM private key found: {e}")))?;
        let kind = peer_kind(&chain[0]).ok_or_else(|| {
            invalid(
                cert_pem,
                "the certificate binds no quorate node id or client name".into(),
            )
        })?;
        let provider = super::tls::provider();
        rustls::sign::CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider).map_err(
            |_| IdentityError::KeyMismatch {
                cert: cert_pem.to_owned(),
                key: key_pem.to_owned(),
            },
        )?;
        let identity = Identity {
            chain,
            key: Arc::new(key),
            ca,
            kind,
            revocation: None,
        };
        let now = SystemTime::now();
        let (not_before, not_after) = identity.validity();
        if now < not_before || now > not_after {
            return Err(IdentityError::OutsideValidity {
                cert: cert_pem.to_owned(),
                not_before,
                not_after,
                now,
            });
        }
        identity
            .verify_against_ca()
            .map_err(|reason| IdentityError::NotIssuedByCa {
                cert: cert_pem.to_owned(),
                ca: ca_pem.to_owned(),
                reason,
            })?;
        Ok(identity)
    }

    /// Writes the certificate chain and the key as PEM; the key file gets mode 0600 on
    /// unix. The CA certificate is not written (see [`ClusterCa::save_cert`]).
    pub fn save(&self, cert_pem: &Path, key_pem: &Path) -> Result<(), IdentityError> {
        let certs: String = self
            .chain
            .iter()
            .map(|c| pem_encode("CERTIFICATE", c))
            .collect();
        write_file(cert_pem, certs.as_bytes(), false)?;
        let label = match &*self.key {
            PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
            PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
            _ => "PRIVATE KEY",
        };
        write_file(
            key_pem,
            pem_encode(label, self.key.secret_der()).as_bytes(),
            true,
        )
    }

    /// The certificate's serial number (the DER integer's bytes): what a revocation
    /// list names ([`ClusterCa::revoke`]).
    pub fn serial(&self) -> Vec<u8> {
        match x509_parser::parse_x509_certificate(&self.chain[0]) {
            Ok((_, x509)) => x509.tbs_certificate.raw_serial().to_vec(),
            Err(_) => Vec::new(),
        }
    }

    /// This identity, checking peers against `revocation` in its handshakes.
    pub(crate) fn with_revocation(&self, revocation: Option<super::revocation::Revocation>) -> Identity {
        Identity {
            revocation,
            ..self.clone()
        }
    }

    /// The revocation list its handshakes check peers against.
    pub(crate) fn revocation(&self) -> Option<&super::revocation::Revocation> {
        self.revocation.as_ref()
    }

    /// When the certificate's validity begins.
    pub fn not_before(&self) -> SystemTime {
        self.validity().0
    }

    /// When the certificate expires: renew it before (`quorate cert renew`, then
    /// `Node::reload_identity`), or peers refuse this node from then on.
    pub fn not_after(&self) -> SystemTime {
        self.validity().1
    }

    /// The certificate's validity (from, until); the epoch when it does not parse (a
    /// loaded identity always parses).
    fn validity(&self) -> (SystemTime, SystemTime) {
        let at = |t: &x509_parser::time::ASN1Time| {
            UNIX_EPOCH + Duration::from_secs(u64::try_from(t.timestamp()).unwrap_or(0))
        };
        match x509_parser::parse_x509_certificate(&self.chain[0]) {
            Ok((_, x509)) => (at(&x509.validity().not_before), at(&x509.validity().not_after)),
            Err(_) => (UNIX_EPOCH, UNIX_EPOCH),
        }
    }

    /// The node id the certificate binds; `None` for a client identity.
    pub fn node_id(&self) -> Option<NodeId> {
        match self.kind {
            PeerKind::Node(id) => Some(id),
            PeerKind::Client(_) => None,
        }
    }

    /// The client name the certificate binds; `None` for a node identity.
    pub fn client_name(&self) -> Option<&str> {
        match &self.kind {
            PeerKind::Client(name) => Some(name),
            PeerKind::Node(_) => None,
        }
    }

    /// What the certificate binds.
    pub fn kind(&self) -> &PeerKind {
        &self.kind
    }

    /// The trusted CA certificate as PEM.
    pub fn ca_pem(&self) -> String {
        pem_encode("CERTIFICATE", &self.ca)
    }

    pub(crate) fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.chain.clone()
    }

    pub(crate) fn key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }

    pub(crate) fn ca(&self) -> &CertificateDer<'static> {
        &self.ca
    }

    /// Checks the chain against the CA with the same verifier the handshake uses.
    fn verify_against_ca(&self) -> Result<(), String> {
        let verifier = super::tls::client_verifier(self).map_err(|e| e.to_string())?;
        verifier
            .verify_client_cert(&self.chain[0], &self.chain[1..], UnixTime::now())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// `t` as a certificate time (whole seconds since the epoch).
pub(crate) fn asn1_time(t: SystemTime) -> Result<x509_parser::time::ASN1Time, IdentityError> {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    x509_parser::time::ASN1Time::from_timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
        .map_err(|e| IdentityError::Generate(format!("time out of range: {e}")))
}

/// `t` in UTC, as people read it (`Dec  1 23:08:35 2026 +00:00`).
pub(crate) fn utc(t: SystemTime) -> String {
    asn1_time(t).map_or_else(|_| format!("{t:?}"), |t| t.to_string())
}

fn gen_err(e: rcgen::Error) -> IdentityError {
    IdentityError::Generate(e.to_string())
}

fn invalid(path: &Path, reason: String) -> IdentityError {
    IdentityError::Invalid {
        path: path.to_owned(),
        reason,
    }
}

fn read_text(path: &Path) -> Result<String, IdentityError> {
    let bytes = fs::read(path).map_err(|source| IdentityError::Read {
        path: path.to_owned(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| invalid(path, "not a PEM file (not text)".into()))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, IdentityError> {
    let text = read_text(path)?;
    let certs = CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(path, format!("malformed PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(path, "no PEM certificate found".into()));
    }
    Ok(certs)
}

pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::with_capacity(der.len() * 4 / 3 + 4);
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn write_file(path: &Path, contents: &[u8], secret: bool) -> Result<(), IdentityError> {
    let err = |source| IdentityError::Write {
        path: path.to_owned(),
        source,
    };
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts.open(path).map_err(err)?;
    #[cfg(unix)]
    if secret {
        // An existing file keeps its mode on open: tighten it before writing the secret.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(err)?;
    }
    #[cfg(not(unix))]
    let _ = secret;
    io::Write::write_all(&mut file, contents).map_err(err)?;
    file.sync_all().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("quorate-id-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn node_and_client_certificates_bind_their_names() {
        let ca = ClusterCa::generate("prod").unwrap();
        let node = ca.issue_node(NodeId(42)).unwrap();
        assert_eq!(peer_kind(&node.chain[0]), Some(PeerKind::Node(NodeId(42))));
        let client = ca.issue_client("ops-1").unwrap();
        assert_eq!(
            peer_kind(&client.chain[0]),
            Some(PeerKind::Client("ops-1".into()))
        );
        assert!(ca.issue_client("Bad Name").is_err());
        assert_eq!(peer_kind(&ca.cert), None);
        assert_eq!(peer_kind(b"garbage"), None);
    }

    #[test]
    fn pem_round_trip_and_checks() {
        let ca = ClusterCa::generate("prod").unwrap();
        let (ca_cert, ca_key) = (tmp("ca.pem"), tmp("ca.key"));
        ca.save(&ca_cert, &ca_key).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&ca_key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let ca2 = ClusterCa::load(&ca_cert, &ca_key).unwrap();
        assert_eq!(ca2.cluster_name(), "prod");
        let node = ca2.issue_node(NodeId(3)).unwrap();
        let (cert, key) = (tmp("n3.pem"), tmp("n3.key"));
        node.save(&cert, &key).unwrap();
        let loaded = Identity::load(&cert, &key, &ca_cert).unwrap();
        assert_eq!(loaded.node_id(), Some(NodeId(3)));

        // A certificate from another CA is refused, naming both files.
        let other = ClusterCa::generate("other").unwrap();
        let other_ca = tmp("other-ca.pem");
        other.save_cert(&other_ca).unwrap();
        let err = Identity::load(&cert, &key, &other_ca).unwrap_err();
        assert!(matches!(err, IdentityError::NotIssuedByCa { .. }), "{err}");
        assert!(err.to_string().contains("other-ca.pem"));

        // A key of another certificate is refused.
        let (cert4, key4) = (tmp("n4.pem"), tmp("n4.key"));
        ca.issue_node(NodeId(4))
            .unwrap()
            .save(&cert4, &key4)
            .unwrap();
        let err = Identity::load(&cert, &key4, &ca_cert).unwrap_err();
        assert!(matches!(err, IdentityError::KeyMismatch { .. }), "{err}");

        // Missing and malformed files name the file.
        let missing = tmp("missing.pem");
        let err = Identity::load(&missing, &key, &ca_cert).unwrap_err();
        assert!(err.to_string().contains("missing.pem"), "{err}");
        let junk = tmp("junk.pem");
        fs::write(&junk, "hello").unwrap();
        let err = Identity::load(&cert, &junk, &ca_cert).unwrap_err();
        assert!(err.to_string().contains("junk.pem"), "{err}");
        let err = ClusterCa::load(&cert, &key).unwrap_err();
        assert!(err.to_string().contains("n3.pem"), "{err}");
    }

    #[test]
    fn certificates_carry_a_validity_and_an_expired_one_is_refused_at_load() {
        let ca = ClusterCa::generate("prod").unwrap();
        let ca_cert = tmp("v-ca.pem");
        ca.save_cert(&ca_cert).unwrap();
        let day = Duration::from_secs(24 * 3600);
        let now = SystemTime::now();
        let default = ca.issue_node(NodeId(1)).unwrap();
        let left = default.not_after().duration_since(now).unwrap();
        assert!(left > DEFAULT_CERT_VALIDITY - day && left <= DEFAULT_CERT_VALIDITY);
        assert!(default.not_before() < now);
        let ca = ca.with_validity(7 * day);
        let week = ca.issue_node(NodeId(2)).unwrap();
        assert!(week.not_after().duration_since(now).unwrap() <= 7 * day);

        let expired = ca
            .with_validity_period(now - 10 * day, now - day)
            .issue_node(NodeId(3))
            .unwrap();
        let (cert, key) = (tmp("v3.pem"), tmp("v3.key"));
        expired.save(&cert, &key).unwrap();
        let err = Identity::load(&cert, &key, &ca_cert).unwrap_err();
        assert!(matches!(err, IdentityError::OutsideValidity { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("v3.pem") && text.contains("expired"), "{text}");
    }

    #[test]
    fn pem_encoding_matches_rcgen() {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["a.test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert_eq!(
            pem_encode("CERTIFICATE", cert.der()).replace("\r\n", "\n"),
            cert.pem().replace("\r\n", "\n")
        );
    }
}
