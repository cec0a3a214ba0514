//! What a request asks for: the route its path names, its query parameters, and the
//! representation its `Accept` header wants (plain JSON, a Table, aggregated discovery, or
//! object metadata only).

use std::collections::HashMap;

/// A path under `/api/v1` or `/apis/{group}/{version}` naming resources.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub plural: String,
    pub name: Option<String>,
    pub sub: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Version,
    Health,
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/{group}`
    Group(String),
    /// `/api/v1`, `/apis/{group}/{version}`
    GroupVersion(String, String),
    OpenApiV2,
    OpenApiV3,
    /// `/openapi/v3/api/v1`, `/openapi/v3/apis/{group}/{version}`
    OpenApiV3Doc(String),
    Resource(ResourcePath),
    Unknown,
}

pub fn route(path: &str) -> Route {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "readyz" | "livez", ..] => Route::Health,
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::Groups,
        ["apis", g] => Route::Group(g.to_string()),
        ["api", v] => Route::GroupVersion(String::new(), v.to_string()),
        ["apis", g, v] => Route::GroupVersion(g.to_string(), v.to_string()),
        ["openapi", "v2"] | ["swagger.json"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiV3,
        ["openapi", "v3", rest @ ..] => Route::OpenApiV3Doc(rest.join("/")),
        ["api", v, rest @ ..] => resource(String::new(), v, rest),
        ["apis", g, v, rest @ ..] => resource(g.to_string(), v, rest),
        _ => Route::Unknown,
    }
}

fn resource(group: String, version: &str, rest: &[&str]) -> Route {
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..] if !matches!(*plural, "status" | "finalize") => {
            (Some(ns.to_string()), [&[*plural][..], tail].concat())
        }
        other => (None, other.to_vec()),
    };
    let (plural, name, sub) = match rest.as_slice() {
        [p] => (p, None, None),
        [p, n] => (p, Some(n.to_string()), None),
        [p, n, s] => (p, Some(n.to_string()), Some(s.to_string())),
        _ => return Route::Unknown,
    };
    Route::Resource(ResourcePath {
        group,
        version: version.to_string(),
        namespace,
        plural: plural.to_string(),
        name,
        sub,
    })
}

/// Decoded query parameters (the first value of each).
#[derive(Debug, Clone, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(q: Option<&str>) -> Self {
        let mut map = HashMap::new();
        for pair in q.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            map.entry(decode(k)).or_insert_with(|| decode(v));
        }
        Query(map)
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1"))
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The representation a client asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Accept {
    Json,
    /// `meta.k8s.io` Table (`v1` or `v1beta1`).
    Table(&'static str),
    /// `meta.k8s.io/v1` PartialObjectMetadata(List).
    Metadata,
    /// Aggregated discovery, `v2` or `v2beta1`.
    Discovery(&'static str),
}

pub fn accept(header: &str) -> Accept {
    for range in header.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default();
        let params: HashMap<&str, &str> = parts.filter_map(|p| p.split_once('=')).collect();
        if !matches!(media, "application/json" | "*/*" | "application/*") {
            continue;
        }
        match (params.get("as"), params.get("g"), params.get("v")) {
            (None, _, _) => return Accept::Json,
            (Some(&"Table"), Some(&"meta.k8s.io"), Some(&"v1")) => return Accept::Table("v1"),
            (Some(&"Table"), Some(&"meta.k8s.io"), Some(&"v1beta1")) => {
                return Accept::Table("v1beta1");
            }
            (
                Some(&("PartialObjectMetadata" | "PartialObjectMetadataList")),
                Some(&"meta.k8s.io"),
                Some(&"v1"),
            ) => {
                return Accept::Metadata;
            }
            (Some(&"APIGroupDiscoveryList"), Some(&"apidiscovery.k8s.io"), Some(&"v2")) => {
                return Accept::Discovery("v2");
            }
            (Some(&"APIGroupDiscoveryList"), Some(&"apidiscovery.k8s.io"), Some(&"v2beta1")) => {
                return Accept::Discovery("v2beta1");
            }
            _ => continue,
        }
    }
    Accept::Json
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let r = route("/apis/proxlet.dev/v1alpha1/namespaces/default/proxyplugins/a/status");
        let Route::Resource(p) = r else {
            panic!("not a resource: {r:?}")
        };
        assert_eq!(
            (p.namespace.as_deref(), p.plural.as_str()),
            (Some("default"), "proxyplugins")
        );
        assert_eq!(
            (p.name.as_deref(), p.sub.as_deref()),
            (Some("a"), Some("status"))
        );
        let Route::Resource(ns) = route("/api/v1/namespaces/kube-system/status") else {
            panic!()
        };
        assert_eq!(
            (ns.plural.as_str(), ns.name.as_deref(), ns.sub.as_deref()),
            ("namespaces", Some("kube-system"), Some("status"))
        );
        assert_eq!(route("/apis"), Route::Groups);
    }

    #[test]
    fn queries_and_accept() {
        let q = Query::parse(Some("labelSelector=app%3Dweb%2Ctier+in+(a)&watch=true"));
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert!(q.flag("watch"));
        let a = accept("application/json;as=Table;v=v1;g=meta.k8s.io,application/json");
        assert_eq!(a, Accept::Table("v1"));
        let d = accept(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
        );
        assert_eq!(d, Accept::Discovery("v2"));
        assert_eq!(
            accept("application/vnd.kubernetes.protobuf, */*"),
            Accept::Json
        );
    }
}
