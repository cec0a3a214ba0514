//! What the auth service's answer means for the request.

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// 2xx: let the request through.
    Allow,
    /// 401: the client must authenticate; answer 401.
    Unauthorized,
    /// Any other answer: 403.
    Forbidden,
    /// No answer (the call failed, timed out or could not be sent): 503.
    Unavailable,
}

impl Decision {
    /// Decides from the call response: `num_headers` is 0 when the call failed, `status` is its
    /// `:status` header.
    pub fn from_response(num_headers: usize, status: Option<&str>) -> Self {
        if num_headers == 0 {
            return Self::Unavailable;
        }
        match status.and_then(|s| s.trim().parse::<u16>().ok()) {
            Some(200..=299) => Self::Allow,
            Some(401) => Self::Unauthorized,
            _ => Self::Forbidden,
        }
    }

    /// Status and body of the local response refusing the request; `None` for [`Self::Allow`].
    pub fn refusal(self) -> Option<(u32, &'static str)> {
        match self {
            Self::Allow => None,
            Self::Unauthorized => Some((401, "unauthorized\n")),
            Self::Forbidden => Some((403, "forbidden\n")),
            Self::Unavailable => Some((503, "auth service unavailable\n")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Decision::{self, *};

    #[test]
    fn answers_map_to_decisions() {
        let d = |n, s| Decision::from_response(n, s);
        assert_eq!(d(3, Some("200")), Allow);
        assert_eq!(d(3, Some("204")), Allow);
        assert_eq!(d(3, Some("401")), Unauthorized);
        assert_eq!(d(3, Some("403")), Forbidden);
        assert_eq!(d(3, Some("302")), Forbidden);
        assert_eq!(d(3, Some("500")), Forbidden);
        assert_eq!(d(3, Some("nonsense")), Forbidden);
        assert_eq!(d(1, None), Forbidden);
        assert_eq!(d(0, None), Unavailable);
    }

    #[test]
    fn refusals() {
        assert_eq!(Allow.refusal(), None);
        assert_eq!(Unauthorized.refusal(), Some((401, "unauthorized\n")));
        assert_eq!(Forbidden.refusal(), Some((403, "forbidden\n")));
        assert_eq!(
            Unavailable.refusal(),
            Some((503, "auth service unavailable\n"))
        );
    }
}
