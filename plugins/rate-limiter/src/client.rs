//! Which bucket a request counts against.

/// The client's address without its port: from `source.address` (Envoy includes the port,
/// `[v6]:port` for IPv6), else the first `x-forwarded-for` entry, else `"unknown"`.
pub fn client_key(source_address: Option<&str>, forwarded_for: Option<&str>) -> String {
    let source = source_address.map(strip_port).filter(|a| !a.is_empty());
    let forwarded = || {
        let first = forwarded_for?.split(',').next()?.trim();
        Some(strip_port(first)).filter(|a| !a.is_empty())
    };
    source.or_else(forwarded).unwrap_or(UNKNOWN).to_owned()
}

/// The key of a request without the configured header.
pub const UNKNOWN: &str = "unknown";

fn strip_port(address: &str) -> &str {
    let address = address.trim();
    if let Some(bracketed) = address.strip_prefix('[') {
        return bracketed.split(']').next().unwrap_or_default();
    }
    match address.split_once(':') {
        // Exactly one colon: host:port. More: a bare IPv6 address.
        Some((host, port)) if !port.contains(':') => host,
        _ => address,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_address_without_port() {
        assert_eq!(client_key(Some("10.1.2.3:51000"), None), "10.1.2.3");
        assert_eq!(client_key(Some("10.1.2.3"), None), "10.1.2.3");
        assert_eq!(client_key(Some("[2001:db8::1]:443"), None), "2001:db8::1");
        assert_eq!(client_key(Some("2001:db8::1"), None), "2001:db8::1");
    }

    #[test]
    fn falls_back_to_forwarded_for_then_unknown() {
        let xff = Some(" 203.0.113.9, 10.0.0.1");
        assert_eq!(client_key(None, xff), "203.0.113.9");
        assert_eq!(client_key(Some(""), xff), "203.0.113.9");
        assert_eq!(client_key(Some("10.0.0.2:1"), xff), "10.0.0.2");
        assert_eq!(client_key(None, Some("")), UNKNOWN);
        assert_eq!(client_key(None, None), UNKNOWN);
    }
}
