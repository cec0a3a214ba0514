//! Path patterns where `*` matches any run of characters, `/` included, and everything else
//! matches itself: `/api/*` matches `/api/` and `/api/v1/users`, `*.json` any path ending so.

/// A parsed pattern: the literal text between the stars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    /// One more part than there are stars; parts may be empty (`/a/*` is `["/a/", ""]`).
    parts: Vec<String>,
}

impl Glob {
    pub fn new(pattern: &str) -> Self {
        Self {
            parts: pattern.split('*').map(str::to_owned).collect(),
        }
    }

    pub fn matches(&self, text: &str) -> bool {
        let Some((first, rest)) = self.parts.split_first() else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
            return text == first; // no star at all
        };
        let Some(mut text) = text.strip_prefix(first.as_str()) else {
            return false;
        };
        // Taking each middle part at its leftmost occurrence leaves the most room for the rest.
        for part in middle {
            match text.find(part.as_str()) {
                Some(at) => text = &text[at + part.len()..],
                None => return false,
            }
        }
        text.ends_with(last.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    fn matches(pattern: &str, text: &str) -> bool {
        Glob::new(pattern).matches(text)
    }

    #[test]
    fn literal_patterns_match_exactly() {
        assert!(matches("/health", "/health"));
        assert!(!matches("/health", "/healthz"));
        assert!(!matches("/health", "/Health"));
        assert!(matches("", ""));
    }

    #[test]
    fn a_star_matches_any_run_including_slashes() {
        assert!(matches("/api/*", "/api/"));
        assert!(matches("/api/*", "/api/v1/users"));
        assert!(!matches("/api/*", "/api"));
        assert!(!matches("/api/*", "/apiary"));
        assert!(matches("*", ""));
        assert!(matches("*", "/anything"));
        assert!(matches("*.json", "/a/b.json"));
        assert!(!matches("*.json", "/a/b.json/c"));
    }

    #[test]
    fn several_stars() {
        assert!(matches("/v*/users/*", "/v2/users/7"));
        assert!(matches("/a*b*c", "/abc"));
        assert!(matches("/a*b*c", "/axxbyybzc"));
        assert!(!matches("/a*b*c", "/axxc"));
        assert!(matches("/a**", "/a"));
        // The middle part must not overlap the suffix.
        assert!(!matches("/*ab*ba", "/aba"));
        assert!(matches("/*ab*ba", "/abba"));
    }
}
