//! rustls configuration: mutual TLS under the cluster CA, ring provider only (never the
//! process-wide default provider), TLS 1.3, ALPN `quorate/1`.

use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

use super::identity::{peer_kind, Identity, IdentityError, PeerKind};

/// The ALPN protocol every quorate connection negotiates.
pub const ALPN: &[u8] = b"quorate/1";

/// The crypto provider quorate uses: ring, passed explicitly to every builder.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_err(e: impl std::fmt::Display) -> IdentityError {
    IdentityError::Tls(e.to_string())
}

fn roots(identity: &Identity) -> Result<Arc<RootCertStore>, IdentityError> {
    let mut roots = RootCertStore::empty();
    roots.add(identity.ca().clone()).map_err(tls_err)?;
    Ok(Arc::new(roots))
}

/// The revocation lists to check peers against (the identity's, if any).
fn crls(identity: &Identity) -> Vec<rustls::pki_types::CertificateRevocationListDer<'static>> {
    identity.revocation().map(|r| r.rustls_der()).into_iter().collect()
}

/// The verifier of peers' client certificates: the chain must lead to the cluster CA,
/// and the certificate must not be on the revocation list.
pub(crate) fn client_verifier(
    identity: &Identity,
) -> Result<Arc<dyn ClientCertVerifier>, IdentityError> {
    WebPkiClientVerifier::builder_with_provider(roots(identity)?, provider())
        .with_crls(crls(identity))
        .only_check_end_entity_revocation()
        .allow_unknown_revocation_status()
        .build()
        .map_err(tls_err)
}

/// The rustls server side of a node: requires a client certificate from the cluster CA.
pub(crate) fn server_crypto(identity: &Identity) -> Result<QuicServerConfig, IdentityError> {
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?
        .with_client_cert_verifier(client_verifier(identity)?)
        .with_single_cert(identity.chain(), identity.key())
        .map_err(tls_err)?;
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    QuicServerConfig::try_from(cfg).map_err(tls_err)
}

/// The rustls client side: the server's chain must lead to the cluster CA and carry the
/// server name dialed (`node-<id>.quorate` for a known node, `member.quorate` for a
/// seed); our own certificate is presented.
pub fn client_crypto(identity: &Identity) -> Result<QuicClientConfig, IdentityError> {
    let verifier = WebPkiServerVerifier::builder_with_provider(roots(identity)?, provider())
        .with_crls(crls(identity))
        .only_check_end_entity_revocation()
        .allow_unknown_revocation_status()
        .build()
        .map_err(tls_err)?;
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?
        .with_webpki_verifier(verifier)
        .with_client_auth_cert(identity.chain(), identity.key())
        .map_err(tls_err)?;
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    QuicClientConfig::try_from(cfg).map_err(tls_err)
}

/// What the peer's (already verified) certificate binds, if anything.
pub fn peer_of(conn: &quinn::Connection) -> Option<PeerKind> {
    let identity = conn.peer_identity()?;
    let certs = identity
        .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
        .ok()?;
    peer_kind(certs.first()?)
}

/// The serial number of the certificate the peer of `conn` presented.
pub(crate) fn peer_serial(conn: &quinn::Connection) -> Option<Vec<u8>> {
    let any = conn.peer_identity()?;
    let certs = any.downcast_ref::<Vec<rustls::pki_types::CertificateDer<'static>>>()?;
    let (_, x509) = x509_parser::parse_x509_certificate(certs.first()?).ok()?;
    Some(x509.tbs_certificate.raw_serial().to_vec())
}
