//! SAML 2.0 bearer assertions for C4C's OAuth token endpoint, built and signed here.
//!
//! Hand-written because the Rust SAML crates sign through libxmlsec1 (a C dependency with its
//! own XML stack). We emit the assertion already in exclusive-canonical form (attributes in
//! canonical order, explicit end tags, canonical escaping, one namespace declaration on the
//! root), so the enveloped-signature digest is the digest of the exact bytes we produce.
//! Signing uses ring: RSA-SHA256 (PKCS#8 or PKCS#1 key) or ECDSA P-256-SHA256 (PKCS#8 key).

use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use ring::signature::{self, EcdsaKeyPair, RsaKeyPair};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::error::C4cError;

const SAML_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const DS_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const SHA256_DIGEST: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";

enum SigningKey {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
}

impl SigningKey {
    fn from_pem(pem: &SecretString) -> Result<Self, C4cError> {
        let bad = |m: String| C4cError::config("auth.signing_key_file", m);
        let mut reader = pem.expose_secret().as_bytes();
        let item = rustls_pemfile::read_one(&mut reader)
            .map_err(|e| bad(format!("not valid PEM: {e}")))?
            .ok_or_else(|| bad("holds no PEM private key".into()))?;
        match item {
            rustls_pemfile::Item::Pkcs8Key(der) => {
                let der = der.secret_pkcs8_der();
                if let Ok(k) = RsaKeyPair::from_pkcs8(der) {
                    return Ok(Self::Rsa(k));
                }
                let rng = ring::rand::SystemRandom::new();
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
                    .map(Self::Ecdsa)
                    .map_err(|e| bad(format!("PKCS#8 key is neither RSA nor ECDSA P-256: {e}")))
            }
            rustls_pemfile::Item::Pkcs1Key(der) => RsaKeyPair::from_der(der.secret_pkcs1_der())
                .map(Self::Rsa)
                .map_err(|e| bad(format!("bad RSA key: {e}"))),
            _ => Err(bad(
                "needs an RSA or P-256 key in PKCS#8 (or RSA PKCS#1) PEM".into(),
            )),
        }
    }

    fn algorithm(&self) -> &'static str {
        match self {
            Self::Rsa(_) => RSA_SHA256,
            Self::Ecdsa(_) => ECDSA_SHA256,
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, C4cError> {
        let rng = ring::rand::SystemRandom::new();
        let failed = |_| C4cError::config("auth.signing_key_file", "signing failed");
        match self {
            Self::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .map_err(failed)?;
                Ok(sig)
            }
            // XML-DSig wants ECDSA signatures as r||s, which ring's FIXED form gives.
            Self::Ecdsa(k) => Ok(k.sign(&rng, message).map_err(failed)?.as_ref().to_vec()),
        }
    }
}

fn cert_der(cert_pem: &str) -> Result<Vec<u8>, C4cError> {
    let mut reader = cert_pem.as_bytes();
    for item in rustls_pemfile::read_all(&mut reader) {
        if let Ok(rustls_pemfile::Item::X509Certificate(der)) = item {
            return Ok(der.to_vec());
        }
    }
    Err(C4cError::config(
        "auth.signing_cert_file",
        "holds no PEM certificate",
    ))
}

/// Checks key and certificate at start-up so a bad file fails early.
pub(crate) fn check_signing_material(
    key_pem: &SecretString,
    cert_pem: &str,
) -> Result<(), C4cError> {
    SigningKey::from_pem(key_pem)?;
    cert_der(cert_pem)?;
    Ok(())
}

/// Canonical XML text escaping (exclusive c14n).
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
    out
}

/// Canonical XML attribute-value escaping (exclusive c14n).
fn attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
    out
}

fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// What goes into one assertion.
pub(crate) struct AssertionInput<'a> {
    pub issuer: &'a str,
    pub user: &'a str,
    pub audience: &'a str,
    pub recipient: &'a str,
    pub client_id: &'a str,
    pub now: DateTime<Utc>,
    pub lifetime: std::time::Duration,
}

/// Builds and signs an assertion; returns the XML document.
pub(crate) fn signed_assertion(
    input: &AssertionInput<'_>,
    key_pem: &SecretString,
    cert_pem: &str,
) -> Result<String, C4cError> {
    let key = SigningKey::from_pem(key_pem)?;
    let cert = base64::engine::general_purpose::STANDARD.encode(cert_der(cert_pem)?);
    let id = format!("_{}", uuid::Uuid::new_v4());
    let now = instant(input.now);
    let not_before = instant(input.now - chrono::Duration::seconds(60));
    let lifetime =
        chrono::Duration::from_std(input.lifetime).unwrap_or(chrono::Duration::seconds(300));
    let expires = instant(input.now + lifetime);

    let head = format!(
        "<saml2:Assertion xmlns:saml2=\"{SAML_NS}\" ID=\"{id}\" IssueInstant=\"{now}\" Version=\"2.0\"><saml2:Issuer>{}</saml2:Issuer>",
        text(input.issuer)
    );
    let tail = format!(
        "<saml2:Subject><saml2:NameID Format=\"urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified\">{user}</saml2:NameID>\
<saml2:SubjectConfirmation Method=\"urn:oasis:names:tc:SAML:2.0:cm:bearer\"><saml2:SubjectConfirmationData NotOnOrAfter=\"{expires}\" Recipient=\"{recipient}\"></saml2:SubjectConfirmationData></saml2:SubjectConfirmation></saml2:Subject>\
<saml2:Conditions NotBefore=\"{not_before}\" NotOnOrAfter=\"{expires}\"><saml2:AudienceRestriction><saml2:Audience>{audience}</saml2:Audience></saml2:AudienceRestriction></saml2:Conditions>\
<saml2:AuthnStatement AuthnInstant=\"{now}\" SessionIndex=\"{id}\"><saml2:AuthnContext><saml2:AuthnContextClassRef>urn:none</saml2:AuthnContextClassRef></saml2:AuthnContext></saml2:AuthnStatement>\
<saml2:AttributeStatement><saml2:Attribute Name=\"client_id\"><saml2:AttributeValue>{client_id}</saml2:AttributeValue></saml2:Attribute></saml2:AttributeStatement></saml2:Assertion>",
        user = text(input.user),
        recipient = attr(input.recipient),
        audience = text(input.audience),
        client_id = text(input.client_id),
    );
    // Enveloped transform + exc-c14n of the signed assertion = the assertion without Signature.
    let digest = Sha256::digest(format!("{head}{tail}").as_bytes());
    let digest = base64::engine::general_purpose::STANDARD.encode(digest);
    let signed_info_inner = format!(
        "<ds:CanonicalizationMethod Algorithm=\"{EXC_C14N}\"></ds:CanonicalizationMethod>\
<ds:SignatureMethod Algorithm=\"{alg}\"></ds:SignatureMethod>\
<ds:Reference URI=\"#{id}\"><ds:Transforms><ds:Transform Algorithm=\"{ENVELOPED}\"></ds:Transform><ds:Transform Algorithm=\"{EXC_C14N}\"></ds:Transform></ds:Transforms>\
<ds:DigestMethod Algorithm=\"{SHA256_DIGEST}\"></ds:DigestMethod><ds:DigestValue>{digest}</ds:DigestValue></ds:Reference>",
        alg = key.algorithm()
    );
    // Exclusive c14n of SignedInfo alone puts the ds namespace on it.
    let canonical_signed_info =
        format!("<ds:SignedInfo xmlns:ds=\"{DS_NS}\">{signed_info_inner}</ds:SignedInfo>");
    let signature_value = base64::engine::general_purpose::STANDARD
        .encode(key.sign(canonical_signed_info.as_bytes())?);
    let signature = format!(
        "<ds:Signature xmlns:ds=\"{DS_NS}\"><ds:SignedInfo>{signed_info_inner}</ds:SignedInfo>\
<ds:SignatureValue>{signature_value}</ds:SignatureValue>\
<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>"
    );
    Ok(format!("{head}{signature}{tail}"))
}

/// Normalises an operator-supplied assertion to the base64 form the token endpoint takes.
pub(crate) fn encode_supplied(assertion: &str) -> String {
    let trimmed = assertion.trim();
    if trimmed.starts_with('<') {
        base64::engine::general_purpose::STANDARD.encode(trimmed.as_bytes())
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// A P-256 PKCS#8 key and a self-signed certificate made by ring at test time.
    fn ec_key_pem() -> SecretString {
        let rng = ring::rand::SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(doc.as_ref());
        SecretString::from(format!(
            "-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n"
        ))
    }

    // Any DER blob is fine for KeyInfo in this unit test; the signature is checked with the key.
    const CERT_PEM: &str = "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n";

    #[test]
    fn signs_a_verifiable_assertion() {
        let key_pem = ec_key_pem();
        let input = AssertionInput {
            issuer: "BRIDGE_IDP",
            user: "TECH<&>\"USER",
            audience: "my000000.crm.ondemand.com",
            recipient: "https://my000000.crm.ondemand.com/sap/bc/sec/oauth2/token?a=1&b=2",
            client_id: "CLIENT",
            now: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            lifetime: std::time::Duration::from_secs(300),
        };
        let xml = signed_assertion(&input, &key_pem, CERT_PEM).unwrap();
        // Well-formed XML with escaped content.
        let mut reader = quick_xml::Reader::from_str(&xml);
        loop {
            if reader.read_event().unwrap() == quick_xml::events::Event::Eof {
                break;
            }
        }
        assert!(xml.contains("TECH&lt;&amp;&gt;\"USER"));
        assert!(xml.contains("token?a=1&amp;b=2"));
        assert!(xml.contains("NotOnOrAfter=\"2026-01-01T00:05:00Z\""));

        // Recompute the digest over the assertion with the Signature removed.
        let start = xml.find("<ds:Signature").unwrap();
        let end = xml.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
        let unsigned = format!("{}{}", &xml[..start], &xml[end..]);
        let digest =
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(unsigned.as_bytes()));
        assert!(xml.contains(&format!("<ds:DigestValue>{digest}</ds:DigestValue>")));

        // Verify the signature over canonical SignedInfo with the public key.
        let si_start = xml.find("<ds:SignedInfo>").unwrap() + "<ds:SignedInfo>".len();
        let si_end = xml.find("</ds:SignedInfo>").unwrap();
        let canonical = format!(
            "<ds:SignedInfo xmlns:ds=\"{DS_NS}\">{}</ds:SignedInfo>",
            &xml[si_start..si_end]
        );
        let sv_start = xml.find("<ds:SignatureValue>").unwrap() + "<ds:SignatureValue>".len();
        let sv_end = xml.find("</ds:SignatureValue>").unwrap();
        let sig = base64::engine::general_purpose::STANDARD
            .decode(&xml[sv_start..sv_end])
            .unwrap();
        let SigningKey::Ecdsa(k) = SigningKey::from_pem(&key_pem).unwrap() else {
            panic!("not ec")
        };
        use ring::signature::KeyPair;
        let public = signature::UnparsedPublicKey::new(
            &signature::ECDSA_P256_SHA256_FIXED,
            k.public_key().as_ref(),
        );
        public.verify(canonical.as_bytes(), &sig).unwrap();
        assert!(public.verify(b"tampered", &sig).is_err());
    }

    #[test]
    fn refuses_bad_key_material() {
        let bad = SecretString::from(
            "-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n".to_string(),
        );
        assert!(check_signing_material(&bad, CERT_PEM).is_err());
        assert!(check_signing_material(&ec_key_pem(), "no cert").is_err());
        check_signing_material(&ec_key_pem(), CERT_PEM).unwrap();
    }

    #[test]
    fn supplied_assertions_are_base64() {
        assert_eq!(encode_supplied("PHNhbWw+"), "PHNhbWw+");
        assert_eq!(
            encode_supplied(" <saml/> "),
            base64::engine::general_purpose::STANDARD.encode("<saml/>")
        );
    }
}
