//! Revocation: a certificate revocation list (an X.509 CRL) signed by the cluster CA.
//!
//! The CA holder makes one with [`ClusterCa::revoke`] (the CLI: `quorate cert revoke`),
//! naming the serial numbers of the certificates no node may present any more, and a
//! number that rises with every new list. Any member given it
//! ([`Node::apply_revocation`](crate::Node::apply_revocation), `quorate revoke`)
//! checks the CA's signature, keeps the list if it is newer than its own, refuses the
//! revoked certificates in every TLS handshake from then on (rustls checks the list;
//! the peer sees the alert `certificate revoked`), closes its connections with them and
//! passes the list on to every member. A node that was away gets it on its next
//! connection with a member that has it. The revoked node is refused by every member,
//! so probes of it fail and SWIM declares it failed within the detection bound; it
//! cannot come back with the same certificate (a renewed one, from the CA, may).
//!
//! A list not signed by the cluster CA is refused (and counted as
//! `revocations_refused`); an older or equal list changes nothing.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{
    CertificateRevocationListParams, Issuer, KeyIdMethod, RevocationReason, RevokedCertParams,
    SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateRevocationListDer;

use super::identity::{ClusterCa, Identity, IdentityError};

/// Largest revocation list accepted (DER bytes): about a thousand revoked
/// certificates. A list beyond it is refused before it is parsed.
pub const MAX_REVOCATION_BYTES: usize = 48 * 1024;

/// Why a revocation list was refused. Nothing changed on the node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationError {
    /// The bytes are not a CRL (PEM or DER), or are over `MAX_REVOCATION_BYTES` (48 KiB).
    #[error("not a revocation list: {0}")]
    Malformed(String),
    /// The list is not signed by this cluster's CA (forged, or another cluster's).
    #[error("the revocation list is not signed by this cluster's CA")]
    NotSignedByCa,
    /// The list has no CRL number (quorate's lists always have one).
    #[error("the revocation list has no number")]
    Unnumbered,
    /// The list is valid but the node could not put it in force (it is stopping, or
    /// its TLS configuration could not be rebuilt); the node's list is unchanged.
    #[error("the revocation list could not be applied: {0}")]
    NotApplied(String),
}

/// What applying a list did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RevocationApplied {
    /// The list is newer than the node's and is now in force.
    pub fresh: bool,
    /// The number of the list the node holds now.
    pub number: u64,
}

/// A revocation list signed by the cluster CA, checked. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Revocation {
    der: Arc<CertificateRevocationListDer<'static>>,
    number: u64,
    serials: Arc<Vec<Vec<u8>>>,
}

impl Revocation {
    /// Reads a list (PEM `X509 CRL` or DER) and checks that `identity`'s CA signed it.
    pub fn parse(bytes: &[u8], identity: &Identity) -> Result<Revocation, RevocationError> {
        if bytes.len() > MAX_REVOCATION_BYTES * 2 {
            return Err(RevocationError::Malformed("too large".into()));
        }
        let der: CertificateRevocationListDer<'static> =
            match CertificateRevocationListDer::from_pem_slice(bytes) {
                Ok(der) => der,
                Err(_) => CertificateRevocationListDer::from(bytes.to_vec()),
            };
        if der.len() > MAX_REVOCATION_BYTES {
            return Err(RevocationError::Malformed("too large".into()));
        }
        let (number, serials) = check(&der, identity.ca())?;
        Ok(Revocation {
            der: Arc::new(der),
            number,
            serials: Arc::new(serials),
        })
    }

    /// The list's number: a newer list has a higher one.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The serial numbers it revokes (DER integer contents, as certificates hold them).
    pub fn serials(&self) -> &[Vec<u8>] {
        &self.serials
    }

    /// Whether it revokes `identity`'s certificate.
    pub fn revokes(&self, identity: &Identity) -> bool {
        self.revokes_serial(&identity.serial())
    }

    /// Whether it revokes the certificate with this serial number.
    pub fn revokes_serial(&self, serial: &[u8]) -> bool {
        self.serials.iter().any(|s| s == serial)
    }

    /// The list as DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The list as PEM (`-----BEGIN X509 CRL-----`), as `openssl crl` reads it.
    pub fn to_pem(&self) -> String {
        super::identity::pem_encode("X509 CRL", &self.der)
    }

    pub(crate) fn rustls_der(&self) -> CertificateRevocationListDer<'static> {
        (*self.der).clone()
    }
}

/// The number and serials of `der`, once the CA's signature on it is checked.
fn check(der: &[u8], ca: &[u8]) -> Result<(u64, Vec<Vec<u8>>), RevocationError> {
    use x509_parser::prelude::FromDer;
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(der)
        .map_err(|e| RevocationError::Malformed(e.to_string()))?;
    let (_, ca) = x509_parser::parse_x509_certificate(ca)
        .map_err(|e| RevocationError::Malformed(format!("the CA certificate: {e}")))?;
    if crl.issuer() != ca.subject() || crl.verify_signature(ca.public_key()).is_err() {
        return Err(RevocationError::NotSignedByCa);
    }
    let number = crl.crl_number().ok_or(RevocationError::Unnumbered)?;
    let number = u64::try_from(number).map_err(|_| RevocationError::Unnumbered)?;
    let serials = crl
        .iter_revoked_certificates()
        .map(|r| r.raw_serial().to_vec())
        .collect();
    Ok((number, serials))
}

impl ClusterCa {
    /// A revocation list numbered `number` (higher than any list before it) revoking
    /// the certificates with these serial numbers ([`Identity::serial`]); every list
    /// names all the certificates revoked so far.
    pub fn revoke(&self, serials: &[Vec<u8>], number: u64) -> Result<Revocation, IdentityError> {
        let now = SystemTime::now();
        let at = |t: SystemTime| super::identity::asn1_time(t).map(|t| t.to_datetime());
        let revoked_certs = serials
            .iter()
            .map(|s| {
                Ok(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(s),
                    revocation_time: at(now)?,
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, IdentityError>>()?;
        let params = CertificateRevocationListParams {
            this_update: at(now)?,
            // The list does not expire: nodes keep the newest one they were given.
            next_update: at(now + Duration::from_secs(100 * 365 * 24 * 3600))?,
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let (cert, key) = self.parts();
        let issuer = Issuer::from_ca_cert_der(cert, key).map_err(|e| IdentityError::Generate(e.to_string()))?;
        let crl = params
            .signed_by(&issuer)
            .map_err(|e| IdentityError::Generate(e.to_string()))?;
        Ok(Revocation {
            der: Arc::new(crl.der().clone()),
            number,
            serials: Arc::new(serials.to_vec()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::NodeId;

    #[test]
    fn a_list_revokes_what_it_names_and_only_its_ca_is_believed() {
        let ca = ClusterCa::generate("prod").unwrap();
        let (n1, n2) = (ca.issue_node(NodeId(1)).unwrap(), ca.issue_node(NodeId(2)).unwrap());
        let list = ca.revoke(&[n2.serial()], 3).unwrap();
        let read = Revocation::parse(list.to_pem().as_bytes(), &n1).unwrap();
        assert_eq!(read.number(), 3);
        assert!(read.revokes(&n2) && !read.revokes(&n1));
        assert!(Revocation::parse(list.der(), &n1).is_ok(), "DER too");

        // Another CA's list (same cluster name) is a forgery here.
        let other = ClusterCa::generate("prod").unwrap();
        let forged = other.revoke(&[n1.serial()], 9).unwrap();
        assert_eq!(
            Revocation::parse(forged.der(), &n1).unwrap_err(),
            RevocationError::NotSignedByCa
        );
        // A tampered list fails its signature.
        let mut bytes = list.der().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(Revocation::parse(&bytes, &n1).is_err());
        assert!(matches!(
            Revocation::parse(b"junk", &n1),
            Err(RevocationError::Malformed(_))
        ));
    }
}
