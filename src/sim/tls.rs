//! HTTPS for the simulator and a throw-away test PKI (made with rcgen) for X.509 client auth.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use secrecy::{ExposeSecret, SecretString};

use super::config::TlsSettings;
use super::error::SimError;

fn tls_err(e: impl std::fmt::Display) -> SimError {
    SimError::Tls(e.to_string())
}

/// A client certificate and its key, PEM encoded.
#[derive(Clone)]
pub struct ClientCertificate {
    pub cert_pem: String,
    pub key_pem: SecretString,
}

impl ClientCertificate {
    /// Certificate followed by key: the form `reqwest::Identity::from_pem` reads.
    pub fn identity_pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.key_pem.expose_secret())
    }
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate").finish_non_exhaustive()
    }
}

/// A test CA, a server certificate for `localhost` / `127.0.0.1`, and client certificates on
/// demand whose subject CN names the technical user they authenticate.
pub struct TestPki {
    ca_cert: rcgen::Certificate,
    ca_key: KeyPair,
    server_cert_pem: String,
    server_key_pem: SecretString,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki").finish_non_exhaustive()
    }
}

impl TestPki {
    pub fn new() -> Result<Self, SimError> {
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "C4C Simulator Test CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().map_err(tls_err)?;
        let ca_cert = ca.self_signed(&ca_key).map_err(tls_err)?;

        let mut server =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .map_err(tls_err)?;
        server
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate().map_err(tls_err)?;
        let server_cert = server
            .signed_by(&server_key, &ca_cert, &ca_key)
            .map_err(tls_err)?;
        Ok(TestPki {
            server_cert_pem: server_cert.pem(),
            server_key_pem: SecretString::from(server_key.serialize_pem()),
            ca_cert,
            ca_key,
        })
    }

    pub fn ca_cert_pem(&self) -> String {
        self.ca_cert.pem()
    }

    pub fn server_cert_pem(&self) -> &str {
        &self.server_cert_pem
    }

    /// A client certificate for `user` (subject CN), signed by the test CA.
    pub fn client_cert(&self, user: &str) -> Result<ClientCertificate, SimError> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
        params.distinguished_name.push(DnType::CommonName, user);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().map_err(tls_err)?;
        let cert = params
            .signed_by(&key, &self.ca_cert, &self.ca_key)
            .map_err(tls_err)?;
        Ok(ClientCertificate {
            cert_pem: cert.pem(),
            key_pem: SecretString::from(key.serialize_pem()),
        })
    }

    /// Settings serving HTTPS with the server certificate; with `client_auth`, client
    /// certificates from this CA are accepted as X.509 authentication.
    pub fn tls_settings(&self, client_auth: bool) -> TlsSettings {
        TlsSettings {
            cert_pem: self.server_cert_pem.clone(),
            key_pem: self.server_key_pem.clone(),
            client_ca_pem: client_auth.then(|| self.ca_cert_pem()),
        }
    }
}

pub(crate) fn server_config(s: &TlsSettings) -> Result<Arc<rustls::ServerConfig>, SimError> {
    let certs = rustls_pemfile::certs(&mut s.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(tls_err)?;
    let key = rustls_pemfile::private_key(&mut s.key_pem.expose_secret().as_bytes())
        .map_err(tls_err)?
        .ok_or_else(|| SimError::Tls("no private key in key PEM".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?;
    let builder = match &s.client_ca_pem {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in rustls_pemfile::certs(&mut ca.as_bytes()) {
                roots.add(c.map_err(tls_err)?).map_err(tls_err)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(tls_err)?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_single_cert(certs, key).map_err(tls_err)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The subject CN of a DER certificate.
pub(crate) fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_owned();
    Some(cn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_certificates_carry_the_user_as_cn() {
        let pki = TestPki::new().unwrap();
        let c = pki.client_cert("SCIM_TECH_USER").unwrap();
        let der = rustls_pemfile::certs(&mut c.cert_pem.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(common_name(&der).as_deref(), Some("SCIM_TECH_USER"));
        assert!(server_config(&pki.tls_settings(true)).is_ok());
        assert!(c.identity_pem().contains("PRIVATE KEY"));
        assert!(!format!("{c:?}").contains("PRIVATE"));
    }
}
