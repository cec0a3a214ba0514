//! Paths to values, printed the two ways the apiserver prints them.

/// A path from the resource root to a value.
#[derive(Clone, Debug, Default)]
pub(crate) struct Path(Vec<Segment>);

#[derive(Clone, Debug)]
enum Segment {
    Field(String),
    Index(usize),
    Key(String),
}

impl Path {
    pub(crate) fn root() -> Self {
        Path::default()
    }

    fn with(&self, segment: Segment) -> Self {
        let mut segments = self.0.clone();
        segments.push(segment);
        Path(segments)
    }

    pub(crate) fn child(&self, name: &str) -> Self {
        self.with(Segment::Field(name.to_owned()))
    }

    pub(crate) fn index(&self, index: usize) -> Self {
        self.with(Segment::Index(index))
    }

    pub(crate) fn key(&self, key: &str) -> Self {
        self.with(Segment::Key(key.to_owned()))
    }

    pub(crate) fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// As the OpenAPI schema validator names values: map keys as fields
    /// (`spec.labels.app`), the root as "".
    pub(crate) fn openapi(&self) -> String {
        let mut out = String::new();
        for segment in &self.0 {
            match segment {
                Segment::Field(name) | Segment::Key(name) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(name);
                }
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    /// As `field.Path` prints: map keys in brackets (`spec.labels[app]`), the root as "<nil>".
    pub(crate) fn field(&self) -> String {
        if self.0.is_empty() {
            return "<nil>".to_owned();
        }
        let mut out = String::new();
        for segment in &self.0 {
            match segment {
                Segment::Field(name) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(name);
                }
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
                Segment::Key(key) => out.push_str(&format!("[{key}]")),
            }
        }
        out
    }

    /// The OpenAPI name as a field path: the root is "<nil>".
    pub(crate) fn openapi_field(&self) -> String {
        if self.0.is_empty() {
            "<nil>".to_owned()
        } else {
            self.openapi()
        }
    }
}
