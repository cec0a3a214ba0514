//! Reading a map in place: the value of one key, or every pair in order, straight from the
//! stream's `http` heads (or the call response's pairs), without building the pairs list.
//!
//! Request headers start with `:authority` (the URI's authority, else `Host`), `:path` (with the
//! query), `:method`, `:scheme` (the connection's), and leave `Host` out: `:authority` stands for
//! it. Response headers start with `:status`. Trailers have no pseudo-headers. Names are lower
//! case; a repeated header is repeated pairs; a value lookup returns the first value.

use http::header::{self, HeaderMap, HeaderValue};
use http::uri::PathAndQuery;
use http::{request, response};

/// A map that exists now, borrowed from where it lives.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    Request {
        head: &'a request::Parts,
        tls: bool,
    },
    Response(&'a response::Parts),
    Trailers(&'a HeaderMap),
    /// An HTTP call response's headers or trailers (gRPC metadata likewise), as received.
    List(&'a [(Vec<u8>, Vec<u8>)]),
}

impl<'a> Source<'a> {
    /// The first value of `key` (any case), if the map has it.
    pub fn get(self, key: &[u8]) -> Option<&'a [u8]> {
        match self {
            Self::Request { head, tls } => {
                if key.starts_with(b":") {
                    request_pseudo(head, tls)
                        .into_iter()
                        .flatten()
                        .find(|(k, _)| key.eq_ignore_ascii_case(k))
                        .map(|(_, v)| v)
                } else if key.eq_ignore_ascii_case(b"host") {
                    None
                } else {
                    header_value(&head.headers, key)
                }
            }
            Self::Response(head) if key.starts_with(b":") => key
                .eq_ignore_ascii_case(b":status")
                .then(|| head.status.as_str().as_bytes()),
            Self::Response(head) => header_value(&head.headers, key),
            Self::Trailers(map) => header_value(map, key),
            Self::List(list) => list
                .iter()
                .find(|(k, _)| lower_eq(k, key))
                .map(|(_, v)| v.as_slice()),
        }
    }

    /// Every pair, in the order `proxy_get_header_map_pairs` lists them.
    pub fn pairs(self) -> Pairs<'a> {
        let (pseudo, headers, skip_host) = match self {
            Self::Request { head, tls } => (request_pseudo(head, tls), Some(&head.headers), true),
            Self::Response(head) => {
                let status = Some((&b":status"[..], head.status.as_str().as_bytes()));
                ([status, None, None, None], Some(&head.headers), false)
            }
            Self::Trailers(map) => ([None; 4], Some(map), false),
            Self::List(list) => {
                return Pairs {
                    pseudo: [None; 4],
                    next: 4,
                    headers: None,
                    skip_host: false,
                    list: list.iter(),
                };
            }
        };
        Pairs {
            pseudo,
            next: 0,
            headers: headers.map(HeaderMap::iter),
            skip_host,
            list: [].iter(),
        }
    }
}

type Pair<'a> = (&'a [u8], &'a [u8]);

/// The pairs of a [`Source`].
pub struct Pairs<'a> {
    pseudo: [Option<Pair<'a>>; 4],
    next: usize,
    headers: Option<header::Iter<'a, HeaderValue>>,
    skip_host: bool,
    list: std::slice::Iter<'a, (Vec<u8>, Vec<u8>)>,
}

impl<'a> Iterator for Pairs<'a> {
    type Item = Pair<'a>;

    fn next(&mut self) -> Option<Pair<'a>> {
        while let Some(slot) = self.pseudo.get(self.next) {
            self.next += 1;
            if let Some(pair) = *slot {
                return Some(pair);
            }
        }
        if let Some(headers) = &mut self.headers {
            return headers
                .find(|(k, _)| !(self.skip_host && *k == header::HOST))
                .map(|(k, v)| (k.as_str().as_bytes(), v.as_bytes()));
        }
        self.list.next().map(|(k, v)| (k.as_slice(), v.as_slice()))
    }
}

/// `:authority`, `:path`, `:method`, `:scheme` of a request; no `:authority` if it has none.
fn request_pseudo(head: &request::Parts, tls: bool) -> [Option<Pair<'_>>; 4] {
    let authority = match head.uri.authority() {
        Some(a) => Some(a.as_str().as_bytes()),
        None => head.headers.get(header::HOST).map(HeaderValue::as_bytes),
    };
    let path = head.uri.path_and_query().map_or("/", PathAndQuery::as_str);
    // The URI the sidecar forwards is always http://; the client's scheme is the connection's.
    let scheme: &[u8] = if tls { b"https" } else { b"http" };
    [
        authority.map(|a| (&b":authority"[..], a)),
        Some((b":path", path.as_bytes())),
        Some((b":method", head.method.as_str().as_bytes())),
        Some((b":scheme", scheme)),
    ]
}

/// The first value of a header; `None` for a name that is not a valid header name.
fn header_value<'a>(headers: &'a HeaderMap, key: &[u8]) -> Option<&'a [u8]> {
    let name = std::str::from_utf8(key).ok()?;
    headers.get(name).map(HeaderValue::as_bytes)
}

/// Whether `stored` equals `key` lower-cased.
fn lower_eq(stored: &[u8], key: &[u8]) -> bool {
    stored.len() == key.len()
        && stored
            .iter()
            .zip(key)
            .all(|(s, k)| *s == k.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, headers: &[(&'static str, &'static str)]) -> request::Parts {
        let mut head = http::Request::new(()).into_parts().0;
        head.uri = uri.parse().unwrap_or_default();
        for (k, v) in headers {
            head.headers.append(*k, HeaderValue::from_static(v));
        }
        head
    }

    fn listed(source: Source<'_>) -> Vec<(String, String)> {
        source
            .pairs()
            .map(|(k, v)| {
                let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                (text(k), text(v))
            })
            .collect()
    }

    #[test]
    fn a_request_lists_its_pseudo_headers_first_and_host_as_authority() {
        let head = request(
            "/a?b=1",
            &[("host", "app.local"), ("x-a", "1"), ("x-a", "2")],
        );
        let source = Source::Request {
            head: &head,
            tls: true,
        };
        let want = [
            (":authority", "app.local"),
            (":path", "/a?b=1"),
            (":method", "GET"),
            (":scheme", "https"),
            ("x-a", "1"),
            ("x-a", "2"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(listed(source), want);
        assert_eq!(source.get(b":PATH"), Some(&b"/a?b=1"[..]));
        assert_eq!(source.get(b"X-A"), Some(&b"1"[..]), "the first value");
        assert_eq!(source.get(b"host"), None, ":authority stands for it");
        assert_eq!(source.get(b":status"), None);
        assert_eq!(source.get(b"not a name"), None);
    }

    #[test]
    fn a_request_without_any_authority_has_no_authority_pair() {
        let head = request("/", &[]);
        let source = Source::Request {
            head: &head,
            tls: false,
        };
        assert_eq!(listed(source).len(), 3);
        assert_eq!(source.get(b":authority"), None);
        assert_eq!(source.get(b":scheme"), Some(&b"http"[..]));
    }

    #[test]
    fn responses_trailers_and_call_responses() {
        let mut head = http::Response::new(()).into_parts().0;
        head.status = http::StatusCode::NOT_FOUND;
        head.headers.append("server", HeaderValue::from_static("x"));
        let source = Source::Response(&head);
        assert_eq!(listed(source)[0], (":status".into(), "404".into()));
        assert_eq!(source.get(b":Status"), Some(&b"404"[..]));
        assert_eq!(source.get(b":path"), None);
        assert_eq!(
            Source::Trailers(&head.headers).get(b"Server"),
            Some(&b"x"[..])
        );
        let list = vec![
            (b"k".to_vec(), b"v".to_vec()),
            (b"K".to_vec(), b"w".to_vec()),
        ];
        assert_eq!(Source::List(&list).get(b"K"), Some(&b"v"[..]));
        assert_eq!(listed(Source::List(&list)).len(), 2);
    }
}
