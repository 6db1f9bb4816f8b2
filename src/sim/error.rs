//! Errors: C4C's OData error bodies and the simulator's own start-up errors.

use http::StatusCode;

/// An error the simulated tenant answers with (`{"error":{"code":…,"message":{"lang":"en","value":…}}}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ODataError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ODataError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ODataError {
            status,
            code: "ERROR",
            message: message.into(),
        }
    }
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub(crate) fn invalid_token(position: usize) -> Self {
        Self::bad_request(format!("Invalid token detected at position {position}"))
    }

    pub(crate) fn json_body(&self) -> String {
        serde_json::json!({
            "error": {
                "code": self.code,
                "message": {"lang": "en", "value": self.message}
            }
        })
        .to_string()
    }

    pub(crate) fn xml_body(&self) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><error xmlns=\"http://schemas.microsoft.com/ado/2007/08/dataservices/metadata\"><code>{}</code><message xml:lang=\"en\">{}</message></error>",
            self.code,
            quick_xml::escape::escape(self.message.as_str())
        )
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid TLS configuration: {0}")]
    Tls(String),
    #[error("invalid seed data: {0}")]
    Seed(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_c4c_shape() {
        let e = ODataError::invalid_token(51);
        let v: serde_json::Value = serde_json::from_str(&e.json_body()).unwrap();
        assert_eq!(v["error"]["code"], "ERROR");
        assert_eq!(v["error"]["message"]["lang"], "en");
        assert_eq!(
            v["error"]["message"]["value"],
            "Invalid token detected at position 51"
        );
        assert!(
            e.xml_body()
                .contains("<message xml:lang=\"en\">Invalid token")
        );
    }
}
