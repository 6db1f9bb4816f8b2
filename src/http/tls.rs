//! TLS serving with rustls, for deployments without a TLS-terminating proxy in front:
//! `server.tls_cert_file` (PEM chain, leaf first) and `server.tls_key_file` (PEM private key).

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;

/// Builds the rustls configuration (TLS 1.2 and 1.3, ring, ALPN h2 and http/1.1). Errors name
/// the file and never include key material.
pub fn server_config(cert_file: &Path, key_file: &Path) -> Result<Arc<ServerConfig>, String> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))
    };
    let cert_pem = read(cert_file)?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| {
            format!(
                "{}: not a PEM certificate chain: {error}",
                cert_file.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", cert_file.display()));
    }
    let key_pem = read(key_file)?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|error| format!("{}: not a PEM private key: {error}", key_file.display()))?
        .ok_or_else(|| format!("{}: no private key found", key_file.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("TLS: {error}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|error| {
            format!(
                "{} and {} do not make a usable certificate and key: {error}",
                cert_file.display(),
                key_file.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
