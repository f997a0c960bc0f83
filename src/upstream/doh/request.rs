//! The HTTP side of a DoH exchange: building the request (RFC 8484 §4.1) and checking the
//! response head (§4.2).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Request, Response, StatusCode, Uri};

use super::{DohError, DohMethod, EndpointError};

/// The DoH media type (RFC 8484 §6).
pub(crate) const DNS_MESSAGE: &str = "application/dns-message";

/// [`DNS_MESSAGE`] as a header value (`content-type` and `accept`).
const DNS_MESSAGE_VALUE: HeaderValue = HeaderValue::from_static(DNS_MESSAGE);

/// An endpoint whose authority and path have been validated once.
#[derive(Debug, Clone)]
pub(crate) struct RequestTarget {
    authority: Authority,
    path: String,
    /// The URI of every POST request, built once.
    post_uri: Uri,
}

impl RequestTarget {
    /// Validates `authority` (`host[:port]`, no user info) and `path` (absolute, no
    /// fragment).
    pub(crate) fn new(authority: &str, path: &str) -> Result<Self, EndpointError> {
        let parsed: Authority = authority
            .parse()
            .map_err(|_| EndpointError::InvalidAuthority {
                authority: authority.to_owned(),
            })?;
        if parsed.as_str().contains('@') || parsed.host().is_empty() {
            return Err(EndpointError::InvalidAuthority {
                authority: authority.to_owned(),
            });
        }
        let bad_path = || EndpointError::InvalidPath {
            path: path.to_owned(),
        };
        if !path.starts_with('/') || path.contains('#') {
            return Err(bad_path());
        }
        let checked: PathAndQuery = path.parse().map_err(|_| bad_path())?;
        if checked.as_str() != path {
            return Err(bad_path());
        }
        let post_uri = Uri::builder()
            .scheme(Scheme::HTTPS)
            .authority(parsed.clone())
            .path_and_query(checked)
            .build()
            .map_err(|_| bad_path())?;
        Ok(RequestTarget {
            authority: parsed,
            path: path.to_owned(),
            post_uri,
        })
    }

    /// Builds the request head carrying `wire` (a DNS message with ID 0), and the body to
    /// send after it (`None` for GET: the message is in the URI). POST reuses the URI built
    /// once and the constant header values; only `content-length` is made per request.
    pub(crate) fn request(
        &self,
        method: DohMethod,
        wire: &Bytes,
    ) -> Result<(Request<()>, Option<Bytes>), DohError> {
        let mut request = Request::new(());
        let body = match method {
            DohMethod::Post => {
                *request.method_mut() = Method::POST;
                *request.uri_mut() = self.post_uri.clone();
                let headers = request.headers_mut();
                headers.insert(CONTENT_TYPE, DNS_MESSAGE_VALUE);
                headers.insert(CONTENT_LENGTH, HeaderValue::from(wire.len()));
                Some(wire.clone())
            }
            DohMethod::Get => {
                let sep = if self.path.contains('?') { '&' } else { '?' };
                let path_and_query =
                    format!("{}{sep}dns={}", self.path, URL_SAFE_NO_PAD.encode(wire));
                *request.uri_mut() = Uri::builder()
                    .scheme(Scheme::HTTPS)
                    .authority(self.authority.clone())
                    .path_and_query(path_and_query)
                    .build()
                    .map_err(|_| {
                        DohError::Endpoint(EndpointError::InvalidPath {
                            path: self.path.clone(),
                        })
                    })?;
                None
            }
        };
        request.headers_mut().insert(ACCEPT, DNS_MESSAGE_VALUE);
        Ok((request, body))
    }
}

/// Checks the response head: status 200, content type `application/dns-message`, and a
/// declared length (if any) within `limit`. Exported only with the feature `fuzzing`, for
/// the fuzz targets.
pub fn check_head<B>(response: &Response<B>, limit: usize) -> Result<(), DohError> {
    let status = response.status();
    if status != StatusCode::OK {
        return Err(DohError::Status {
            status: status.as_u16(),
        });
    }
    let content_type = response.headers().get(CONTENT_TYPE);
    if !content_type.is_some_and(is_dns_message) {
        return Err(DohError::ContentType {
            content_type: content_type.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        });
    }
    if let Some(len) = response.headers().get(CONTENT_LENGTH) {
        let declared = len.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok());
        let too_large = match declared {
            Some(n) => usize::try_from(n).map_or(true, |n| n > limit),
            None => false,
        };
        if too_large {
            return Err(DohError::ResponseTooLarge { limit });
        }
    }
    Ok(())
}

/// `application/dns-message`, ignoring case, surrounding space and parameters.
fn is_dns_message(value: &HeaderValue) -> bool {
    let Ok(text) = value.to_str() else {
        return false;
    };
    let media = text.split(';').next().unwrap_or_default().trim();
    media.eq_ignore_ascii_case(DNS_MESSAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> RequestTarget {
        RequestTarget::new("127.0.0.1:8443", "/dns-query").unwrap()
    }

    #[test]
    fn post_request_carries_body_and_media_types() {
        let wire = Bytes::from_static(&[0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        let (req, body) = target().request(DohMethod::Post, &wire).unwrap();
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.uri().to_string(), "https://127.0.0.1:8443/dns-query");
        assert_eq!(req.headers()[CONTENT_TYPE], DNS_MESSAGE);
        assert_eq!(req.headers()[ACCEPT], DNS_MESSAGE);
        assert_eq!(req.headers()[CONTENT_LENGTH], "12");
        assert_eq!(body, Some(wire));
    }

    #[test]
    fn get_request_uses_unpadded_base64url() {
        // 0xfb 0xff encodes to "-_8" in base64url: both URL-specific characters, no '='.
        let wire = Bytes::from_static(&[0xfb, 0xff]);
        let (req, body) = target().request(DohMethod::Get, &wire).unwrap();
        assert_eq!(req.method(), Method::GET);
        assert_eq!(
            req.uri().to_string(),
            "https://127.0.0.1:8443/dns-query?dns=-_8"
        );
        assert_eq!(req.uri().query(), Some("dns=-_8"));
        assert!(req.headers().get(CONTENT_TYPE).is_none());
        assert_eq!(req.headers()[ACCEPT], DNS_MESSAGE);
        assert!(body.is_none());
    }

    #[test]
    fn get_appends_to_existing_query_string() {
        let t = RequestTarget::new("dns.example", "/q?ct=1").unwrap();
        let (req, _) = t
            .request(DohMethod::Get, &Bytes::from_static(&[1]))
            .unwrap();
        assert_eq!(req.uri().query(), Some("ct=1&dns=AQ"));
    }

    #[test]
    fn invalid_endpoints_rejected() {
        assert!(matches!(
            RequestTarget::new("user@host", "/dns-query"),
            Err(EndpointError::InvalidAuthority { .. })
        ));
        assert!(matches!(
            RequestTarget::new("a b", "/dns-query"),
            Err(EndpointError::InvalidAuthority { .. })
        ));
        assert!(matches!(
            RequestTarget::new("host", "dns-query"),
            Err(EndpointError::InvalidPath { .. })
        ));
        assert!(matches!(
            RequestTarget::new("host", "/dns query"),
            Err(EndpointError::InvalidPath { .. })
        ));
        assert!(matches!(
            RequestTarget::new("host", "/a#frag"),
            Err(EndpointError::InvalidPath { .. })
        ));
    }

    fn head(status: u16, ctype: Option<&str>, len: Option<&str>) -> Response<()> {
        let mut b = Response::builder().status(status);
        if let Some(c) = ctype {
            b = b.header(CONTENT_TYPE, c);
        }
        if let Some(l) = len {
            b = b.header(CONTENT_LENGTH, l);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn head_checks() {
        assert!(check_head(&head(200, Some(DNS_MESSAGE), Some("100")), 100).is_ok());
        assert!(check_head(&head(200, Some("Application/DNS-Message; x=1"), None), 10).is_ok());
        assert!(matches!(
            check_head(&head(500, Some(DNS_MESSAGE), None), 10),
            Err(DohError::Status { status: 500 })
        ));
        assert!(matches!(
            check_head(&head(200, Some("text/html"), None), 10),
            Err(DohError::ContentType { content_type: Some(c) }) if c == "text/html"
        ));
        assert!(matches!(
            check_head(&head(200, None, None), 10),
            Err(DohError::ContentType { content_type: None })
        ));
        assert!(matches!(
            check_head(&head(200, Some(DNS_MESSAGE), Some("101")), 100),
            Err(DohError::ResponseTooLarge { limit: 100 })
        ));
        assert!(matches!(
            check_head(
                &head(200, Some(DNS_MESSAGE), Some("18446744073709551615")),
                100
            ),
            Err(DohError::ResponseTooLarge { limit: 100 })
        ));
    }
}
