//! The HTTP transport of the OData calls: hyper's pooled HTTP/1.1 client over rustls, proxies
//! from the environment, the tenant's session cookies and gzip bodies.
//!
//! Why not reqwest here: each call through it re-parsed its URL three times (its cookie,
//! redirect and pending-request layers) and cloned the request for its retry layer, about a
//! tenth of the bridge's CPU per proxied GET (docs/performance.md). We retry, time out and
//! follow (or refuse) redirects ourselves, so those layers bought nothing. Token endpoint
//! calls, a few an hour, still go through reqwest.

use std::future::Future;
use std::io::Read as _;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tower_service::Service;

use super::error::C4cError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Decoded gzip bodies above this are refused: no OData page comes near it.
const MAX_DECODED_BODY: u64 = 256 * 1024 * 1024;

/// One completed exchange, any status.
pub(crate) struct Exchange {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// TLS and pool settings of a [`Transport`].
pub(crate) struct TransportConfig {
    pub tls: rustls::ClientConfig,
    pub connect_timeout: Duration,
    /// One exchange, from sending to the last byte of the body.
    pub request_timeout: Duration,
    pub max_idle_per_host: usize,
    pub proxies: Matcher,
}

pub(crate) struct Transport {
    client: Client<Timed<HttpsConnector<ProxyConnector>>, Full<Bytes>>,
    proxies: Arc<Matcher>,
    cookies: SessionCookies,
    request_timeout: Duration,
    user_agent: HeaderValue,
}

impl Transport {
    pub fn new(config: TransportConfig) -> Self {
        let proxies = Arc::new(config.proxies);
        let mut http = HttpConnector::new();
        // hyper's connector refuses https URIs unless told the TLS layer above handles them.
        http.enforce_http(false);
        http.set_nodelay(true);
        let connector = ProxyConnector {
            http,
            proxies: proxies.clone(),
        };
        let https = HttpsConnectorBuilder::new()
            .with_tls_config(config.tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(config.max_idle_per_host)
            .build(Timed {
                inner: https,
                timeout: config.connect_timeout,
            });
        Self {
            client,
            proxies,
            cookies: SessionCookies::default(),
            request_timeout: config.request_timeout,
            user_agent: HeaderValue::from_static(concat!(
                "c4c-scim-bridge/",
                env!("CARGO_PKG_VERSION")
            )),
        }
    }

    /// Sends `request` with the session cookies, the user agent and (through a proxy, for a
    /// plain-http target) the proxy's credentials; keeps the cookies the answer sets.
    pub async fn send(&self, mut request: Request<Bytes>) -> Result<Exchange, C4cError> {
        let headers = request.headers_mut();
        headers.insert(header::USER_AGENT, self.user_agent.clone());
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        if let Some(cookies) = self.cookies.header() {
            headers.insert(header::COOKIE, cookies);
        }
        if request.uri().scheme() == Some(&http::uri::Scheme::HTTP)
            && let Some(intercept) = self.proxies.intercept(request.uri())
            && let Some(auth) = intercept.basic_auth()
        {
            request
                .headers_mut()
                .insert(header::PROXY_AUTHORIZATION, auth.clone());
        }
        let request = request.map(Full::new);
        let exchange = async {
            let response = self.client.request(request).await.map_err(send_error)?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| C4cError::Transport {
                    message: error_chain("reading the answer failed", &e),
                    outcome_unknown: true,
                })?
                .to_bytes();
            Ok::<_, C4cError>((parts, body))
        };
        let (parts, body) = tokio::time::timeout(self.request_timeout, exchange)
            .await
            .map_err(|_| C4cError::Timeout {
                outcome_unknown: true,
            })??;
        self.cookies.absorb(&parts.headers);
        let body = decode(&parts.headers, body, MAX_DECODED_BODY)?;
        Ok(Exchange {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// Maps a failed send. Only a failed connect proves the request was not sent.
fn send_error(e: hyper_util::client::legacy::Error) -> C4cError {
    let sent = !e.is_connect();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        if s.is::<ConnectTimeout>() {
            return C4cError::Timeout {
                outcome_unknown: false,
            };
        }
        source = s.source();
    }
    C4cError::Transport {
        message: error_chain(
            if sent {
                "sending failed"
            } else {
                "connect failed"
            },
            &e,
        ),
        outcome_unknown: sent,
    }
}

fn error_chain(context: &str, e: &dyn std::error::Error) -> String {
    format!("{context}: {}", with_sources(e))
}

/// The error with its sources: the useful part ("connection reset", "tls handshake", …) is
/// usually deep in the chain.
pub(crate) fn with_sources(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

fn decode(headers: &HeaderMap, body: Bytes, limit: u64) -> Result<Bytes, C4cError> {
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    if !gzip || body.is_empty() {
        return Ok(body);
    }
    let mut decoded = Vec::with_capacity(body.len() * 4);
    // One byte past the limit tells a body that is too large from one that is exactly at it.
    flate2::read::GzDecoder::new(&body[..])
        .take(limit.saturating_add(1))
        .read_to_end(&mut decoded)
        .map_err(|e| C4cError::UnexpectedResponse(format!("broken gzip body: {e}")))?;
    if decoded.len() as u64 > limit {
        return Err(C4cError::UnexpectedResponse(format!(
            "gzip body larger than {limit} bytes once decoded"
        )));
    }
    Ok(Bytes::from(decoded))
}

/// The cookies of the tenant's session (the CSRF token is bound to them). The transport talks
/// to one host only (next links may not leave the tenant), so cookies are kept by name, for
/// every path; the Cookie header is rebuilt only when a response sets one.
#[derive(Default)]
struct SessionCookies {
    jar: RwLock<Jar>,
}

#[derive(Default)]
struct Jar {
    pairs: Vec<(String, String)>,
    header: Option<HeaderValue>,
}

impl SessionCookies {
    fn header(&self) -> Option<HeaderValue> {
        self.jar.read().ok().and_then(|jar| jar.header.clone())
    }

    fn absorb(&self, headers: &HeaderMap) {
        let mut set = headers.get_all(header::SET_COOKIE).iter().peekable();
        if set.peek().is_none() {
            return;
        }
        let Ok(mut jar) = self.jar.write() else {
            return;
        };
        for value in set {
            let Some((name, value, expired)) = value.to_str().ok().and_then(parse_set_cookie)
            else {
                continue;
            };
            jar.pairs.retain(|(n, _)| n != name);
            if !expired {
                jar.pairs.push((name.to_owned(), value.to_owned()));
            }
        }
        let line = jar
            .pairs
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        jar.header = if line.is_empty() {
            None
        } else {
            HeaderValue::from_str(&line).ok().map(|mut v| {
                v.set_sensitive(true);
                v
            })
        };
    }
}

/// `name=value; attributes` → (name, value, whether it is already expired, i.e. a deletion).
fn parse_set_cookie(line: &str) -> Option<(&str, &str, bool)> {
    let mut parts = line.split(';');
    let (name, value) = parts.next()?.split_once('=')?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let value = value.trim().trim_matches('"');
    let mut expired = false;
    for attribute in parts {
        let Some((key, val)) = attribute.split_once('=') else {
            continue;
        };
        let (key, val) = (key.trim(), val.trim());
        if key.eq_ignore_ascii_case("max-age") {
            // Max-Age wins over Expires (RFC 6265 5.3).
            match val.parse::<i64>() {
                Ok(seconds) => return Some((name, value, seconds <= 0)),
                Err(_) => continue,
            }
        }
        if key.eq_ignore_ascii_case("expires")
            && let Ok(at) = httpdate::parse_http_date(val)
        {
            expired = at <= SystemTime::now();
        }
    }
    Some((name, value, expired))
}

/// A connector within the connect timeout (TCP, proxy tunnel and TLS handshake).
#[derive(Clone)]
struct Timed<C> {
    inner: C,
    timeout: Duration,
}

/// The connect timeout fired. Kept distinct so that it maps to "not sent".
#[derive(Debug, thiserror::Error)]
#[error("connect timed out")]
struct ConnectTimeout;

impl<C> Service<Uri> for Timed<C>
where
    C: Service<Uri>,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<C::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let connecting = self.inner.call(dst);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(connected) => connected.map_err(Into::into),
                Err(_) => Err(Box::new(ConnectTimeout) as BoxError),
            }
        })
    }
}

/// Connects directly, through a CONNECT tunnel (https targets behind a proxy) or to the proxy
/// itself (plain-http targets, sent in absolute form).
#[derive(Clone)]
struct ProxyConnector {
    http: HttpConnector,
    proxies: Arc<Matcher>,
}

impl Service<Uri> for ProxyConnector {
    type Response = ProxyStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<ProxyStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let mut http = self.http.clone();
        let intercept = self.proxies.intercept(&dst);
        Box::pin(async move {
            match intercept {
                None => Ok(ProxyStream {
                    io: http.call(dst).await?,
                    absolute_form: false,
                }),
                Some(proxy) if dst.scheme() == Some(&http::uri::Scheme::HTTPS) => {
                    let mut tunnel = Tunnel::new(proxy.uri().clone(), http);
                    if let Some(auth) = proxy.basic_auth() {
                        tunnel = tunnel.with_auth(auth.clone());
                    }
                    Ok(ProxyStream {
                        io: tunnel.call(dst).await?,
                        absolute_form: false,
                    })
                }
                Some(proxy) => Ok(ProxyStream {
                    io: http.call(proxy.uri().clone()).await?,
                    absolute_form: true,
                }),
            }
        })
    }
}

/// A TCP stream that tells hyper whether requests on it go to a proxy in absolute form.
struct ProxyStream {
    io: TokioIo<TcpStream>,
    absolute_form: bool,
}

impl Connection for ProxyStream {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.absolute_form)
    }
}

impl Read for ProxyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for ProxyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::sync::Mutex;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    fn transport(tls: rustls::ClientConfig, proxies: Matcher) -> Transport {
        Transport::new(TransportConfig {
            tls,
            connect_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_secs(10),
            max_idle_per_host: 4,
            proxies,
        })
    }

    fn no_proxy() -> Matcher {
        Matcher::builder().build()
    }

    fn get(url: &str) -> Request<Bytes> {
        let mut request = Request::new(Bytes::new());
        *request.uri_mut() = url.parse().expect("test URL");
        request
    }

    fn plain_tls() -> rustls::ClientConfig {
        super::super::tls::client_config(&[], None).expect("TLS config")
    }

    /// Serves one fixed answer per connection, recording each request's head.
    async fn fixed_server(answers: Vec<Vec<u8>>) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        tokio::spawn(async move {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            for answer in answers {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if stream.read_exact(&mut byte).await.is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                seen.lock()
                    .expect("heads")
                    .push(String::from_utf8_lossy(&head).into_owned());
                if stream.write_all(&answer).await.is_err() {
                    return;
                }
            }
        });
        (format!("http://{address}"), heads)
    }

    fn answer(extra_headers: &str, body: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n{extra_headers}\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn set_cookie_lines_are_read_with_their_expiry() {
        assert_eq!(
            parse_set_cookie("SAP_SESSIONID=abc; path=/; HttpOnly"),
            Some(("SAP_SESSIONID", "abc", false))
        );
        assert_eq!(
            parse_set_cookie("a=\"quoted\"; Max-Age=0"),
            Some(("a", "quoted", true))
        );
        assert_eq!(
            parse_set_cookie("a=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(("a", "1", true))
        );
        // Max-Age wins over Expires.
        assert_eq!(
            parse_set_cookie("a=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=60"),
            Some(("a", "1", false))
        );
        assert_eq!(
            parse_set_cookie("a=1; Expires=Fri, 01 Jan 2100 00:00:00 GMT"),
            Some(("a", "1", false))
        );
        assert_eq!(parse_set_cookie("novalue"), None);
        assert_eq!(parse_set_cookie("=x"), None);
    }

    #[tokio::test]
    async fn session_cookies_are_sent_back_replaced_and_dropped() {
        let (base, heads) = fixed_server(vec![
            answer(
                "set-cookie: session=one; path=/\r\nset-cookie: user=u1; HttpOnly\r\n",
                b"{}",
            ),
            answer("set-cookie: session=two\r\n", b"{}"),
            answer("set-cookie: user=gone; Max-Age=0\r\n", b"{}"),
            answer("", b"{}"),
        ])
        .await;
        let transport = transport(plain_tls(), no_proxy());
        for _ in 0..4 {
            let exchange = transport
                .send(get(&format!("{base}/x")))
                .await
                .expect("send");
            assert_eq!(exchange.status, StatusCode::OK);
        }
        let heads = heads.lock().expect("heads").clone();
        let cookie = |i: usize| {
            heads[i]
                .lines()
                .find_map(|l| l.strip_prefix("cookie: ").map(str::to_owned))
        };
        assert_eq!(cookie(0), None);
        assert_eq!(cookie(1).as_deref(), Some("session=one; user=u1"));
        assert_eq!(cookie(2).as_deref(), Some("user=u1; session=two"));
        assert_eq!(cookie(3).as_deref(), Some("session=two"));
        assert!(heads[0].contains("accept-encoding: gzip"), "{}", heads[0]);
        assert!(heads[0].starts_with("GET /x HTTP/1.1"), "{}", heads[0]);
    }

    #[tokio::test]
    async fn gzip_bodies_are_decoded_and_broken_ones_refused() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder
            .write_all(b"{\"d\":{\"results\":[]}}")
            .expect("gzip");
        let gzipped = encoder.finish().expect("gzip");
        let (base, _) = fixed_server(vec![
            answer("content-encoding: gzip\r\n", &gzipped),
            answer("content-encoding: gzip\r\n", b"not gzip at all"),
        ])
        .await;
        let transport = transport(plain_tls(), no_proxy());
        let exchange = transport
            .send(get(&format!("{base}/a")))
            .await
            .expect("send");
        assert_eq!(&exchange.body[..], b"{\"d\":{\"results\":[]}}");
        let err = transport
            .send(get(&format!("{base}/b")))
            .await
            .err()
            .expect("a broken gzip body is an error");
        assert!(err.to_string().contains("gzip"), "{err}");
    }

    #[test]
    fn a_gzip_body_past_the_limit_is_refused_not_cut() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&[b'x'; 1000]).expect("gzip");
        let gzipped = Bytes::from(encoder.finish().expect("gzip"));
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        let exact = decode(&headers, gzipped.clone(), 1000).expect("at the limit");
        assert_eq!(exact.len(), 1000);
        let err = decode(&headers, gzipped.clone(), 999).expect_err("past the limit");
        assert!(err.to_string().contains("larger than 999 bytes"), "{err}");
        // Without the header the body is passed through untouched.
        assert_eq!(
            decode(&HeaderMap::new(), gzipped.clone(), 1).expect("plain"),
            gzipped
        );
    }

    /// A forward proxy for one connection: CONNECT is tunnelled, anything else forwarded to the
    /// host its absolute-form target names. Records each request line.
    async fn proxy() -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let seen = lines.clone();
        tokio::spawn(async move {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if client.read_exact(&mut byte).await.is_err() {
                    return;
                }
                head.push(byte[0]);
            }
            let head_text = String::from_utf8_lossy(&head).into_owned();
            let line = head_text.lines().next().unwrap_or_default().to_owned();
            seen.lock().expect("lines").push(head_text);
            let mut words = line.split(' ');
            let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let authority = if method == "CONNECT" {
                target.to_owned()
            } else {
                target
                    .strip_prefix("http://")
                    .and_then(|rest| rest.split('/').next())
                    .unwrap_or_default()
                    .to_owned()
            };
            let Ok(mut upstream) = TcpStream::connect(authority).await else {
                return;
            };
            if method == "CONNECT" {
                if client.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.is_err() {
                    return;
                }
            } else if upstream.write_all(&head).await.is_err() {
                return;
            }
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        });
        (format!("http://{address}"), lines)
    }

    #[tokio::test]
    async fn a_plain_http_target_goes_to_the_proxy_in_absolute_form_with_its_credentials() {
        let (base, _) = fixed_server(vec![answer("", b"{}")]).await;
        let (proxy_url, lines) = proxy().await;
        let proxy_with_user = proxy_url.replace("http://", "http://scott:tiger@");
        let transport = transport(plain_tls(), Matcher::builder().all(proxy_with_user).build());
        let exchange = transport
            .send(get(&format!("{base}/odata?$top=1")))
            .await
            .expect("send through the proxy");
        assert_eq!(exchange.status, StatusCode::OK);
        let lines = lines.lock().expect("lines").clone();
        assert!(
            lines[0].starts_with(&format!("GET {base}/odata?$top=1 HTTP/1.1")),
            "{lines:?}"
        );
        // base64("scott:tiger")
        assert!(
            lines[0].contains("proxy-authorization: Basic c2NvdHQ6dGlnZXI="),
            "{lines:?}"
        );
    }

    #[tokio::test]
    async fn an_https_target_is_reached_through_a_connect_tunnel() {
        let pki = crate::sim::tls::TestPki::new().expect("PKI");
        let sim = crate::sim::Simulator::start(crate::sim::SimConfig {
            tls: Some(pki.tls_settings(false)),
            ..Default::default()
        })
        .await
        .expect("simulator");
        let dir = tempfile::tempdir().expect("dir");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, pki.ca_cert_pem()).expect("CA file");
        let roots = super::super::tls::read_ca_certs(&ca).expect("CA file");
        let tls = super::super::tls::client_config(&roots, None).expect("TLS config");
        let (proxy_url, lines) = proxy().await;
        let transport = transport(tls, Matcher::builder().all(proxy_url).build());
        let url = sim.service_url();
        assert!(url.starts_with("https://127.0.0.1:"), "{url}");
        let mut request = get(&format!("{url}/EmployeeCollection?$top=1&$format=json"));
        let credentials = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!(
                "{}:{}",
                crate::sim::DEFAULT_USER,
                crate::sim::DEFAULT_PASSWORD
            ),
        );
        request.headers_mut().insert(
            header::AUTHORIZATION,
            HeaderValue::try_from(format!("Basic {credentials}")).expect("header"),
        );
        let exchange = transport
            .send(request)
            .await
            .expect("send through the tunnel");
        assert_eq!(exchange.status, StatusCode::OK);
        assert!(
            String::from_utf8_lossy(&exchange.body).contains("\"results\""),
            "{:?}",
            exchange.body
        );
        let authority = url
            .trim_start_matches("https://")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let lines = lines.lock().expect("lines").clone();
        assert!(
            lines[0].starts_with(&format!("CONNECT {authority} HTTP/1.1")),
            "{lines:?}"
        );
    }

    #[tokio::test]
    async fn a_handshake_that_never_ends_is_a_connect_timeout_not_an_unknown_outcome() {
        // Accepts TCP and never answers the TLS ClientHello.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let transport = transport(plain_tls(), no_proxy());
        let err = transport
            .send(get(&format!("https://{address}/")))
            .await
            .err()
            .expect("no handshake");
        assert!(
            matches!(
                err,
                C4cError::Timeout {
                    outcome_unknown: false
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_was_surely_not_sent() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        drop(listener);
        let transport = transport(plain_tls(), no_proxy());
        let err = transport
            .send(get(&format!("http://{address}/")))
            .await
            .err()
            .expect("refused");
        assert!(
            matches!(
                err,
                C4cError::Transport {
                    outcome_unknown: false,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
