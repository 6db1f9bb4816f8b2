//! TLS material: PEM checks, PKCS#12 → PEM, and the rustls client configuration of the OData
//! transport.

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use secrecy::{ExposeSecret, SecretString};

use super::error::C4cError;

fn pem_block(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Reads a PKCS#12 file (as downloaded from the communication arrangement) into one PEM
/// holding the certificate chain and the PKCS#8 private key.
pub(crate) fn p12_to_pem(path: &Path, password: &SecretString) -> Result<SecretString, C4cError> {
    let data = std::fs::read(path).map_err(|e| {
        C4cError::config(
            "auth.p12_file",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let store = p12_keystore::KeyStore::from_pkcs12(
        &data,
        password.expose_secret(),
        p12_keystore::Pkcs12ImportPolicy::Relaxed,
    )
    .map_err(|e| {
        C4cError::config(
            "auth.p12_file",
            format!("cannot open {} (wrong p12_password?): {e}", path.display()),
        )
    })?;
    let (_, chain) = store
        .private_key_chain()
        .ok_or_else(|| C4cError::config("auth.p12_file", "holds no private key"))?;
    if chain.certs().is_empty() {
        return Err(C4cError::config(
            "auth.p12_file",
            "holds no certificate for its key",
        ));
    }
    let mut pem = String::new();
    for cert in chain.certs() {
        pem.push_str(&pem_block("CERTIFICATE", cert.as_der()));
    }
    pem.push_str(&pem_block("PRIVATE KEY", chain.key().as_der()));
    Ok(SecretString::from(pem))
}

/// Checks that a PEM bundle holds at least one certificate and exactly one private key.
pub(crate) fn check_identity_pem(pem: &SecretString) -> Result<(), C4cError> {
    let mut reader = pem.expose_secret().as_bytes();
    let mut certs = 0;
    let mut keys = 0;
    for item in rustls_pemfile::read_all(&mut reader) {
        match item {
            Ok(rustls_pemfile::Item::X509Certificate(_)) => certs += 1,
            Ok(
                rustls_pemfile::Item::Pkcs1Key(_)
                | rustls_pemfile::Item::Pkcs8Key(_)
                | rustls_pemfile::Item::Sec1Key(_),
            ) => keys += 1,
            Ok(_) => {}
            Err(e) => {
                return Err(C4cError::config(
                    "auth.cert_file",
                    format!("not valid PEM: {e}"),
                ));
            }
        }
    }
    if certs == 0 {
        return Err(C4cError::config(
            "auth.cert_file",
            "holds no PEM certificate",
        ));
    }
    if keys != 1 {
        return Err(C4cError::config(
            "auth.key_file",
            format!("must hold one PEM private key, found {keys}"),
        ));
    }
    Ok(())
}

/// Reads extra CA certificates (PEM) to trust: the OData transport's and the token client's.
pub(crate) fn read_ca_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, C4cError> {
    let data = std::fs::read(path).map_err(|e| {
        C4cError::config(
            "ca_cert_file",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            C4cError::config("ca_cert_file", format!("not a PEM certificate bundle: {e}"))
        })?;
    if certs.is_empty() {
        return Err(C4cError::config("ca_cert_file", "holds no certificate"));
    }
    Ok(certs)
}

/// The rustls configuration of the OData transport: the public web roots (as reqwest's
/// `rustls-tls` trusts), plus `extra_roots` (from `ca_cert_file`), plus the client certificate
/// when authenticating by X.509.
pub(crate) fn client_config(
    extra_roots: &[CertificateDer<'static>],
    identity_pem: Option<&SecretString>,
) -> Result<rustls::ClientConfig, C4cError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in extra_roots {
        roots.add(cert.clone()).map_err(|e| {
            C4cError::config("ca_cert_file", format!("unusable CA certificate: {e}"))
        })?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| C4cError::config("auth", format!("TLS setup failed: {e}")))?
    .with_root_certificates(roots);
    let config = match identity_pem {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let unusable = |e: &dyn std::fmt::Display| {
                C4cError::config("auth.cert_file", format!("unusable certificate/key: {e}"))
            };
            let pem = pem.expose_secret().as_bytes();
            let chain = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| unusable(&e))?;
            let key = PrivateKeyDer::from_pem_slice(pem).map_err(|e| unusable(&e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| unusable(&e))?
        }
    };
    // ALPN is left to the connector (hyper-rustls sets what it speaks).
    Ok(config)
}
