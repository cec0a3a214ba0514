//! The resource types the server serves: the built-in ones and those installed by
//! CustomResourceDefinitions, looked up by group, version and plural.
//!
//! A [`ResourceInfo`] says everything the handlers need about one served group-version-resource:
//! its kind, scope, verbs, subresources, where its objects are stored, and (for custom
//! resources) the schema and printer columns. It holds no objects.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::builtin;

/// How stored objects are shaped for this group-version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Stored as served.
    Plain,
    /// `events.k8s.io/v1` Events, stored in the `core/v1` shape and converted on the way.
    EventsV1,
}

/// What kind of endpoint a resource is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// Objects stored and served with the usual verbs.
    Stored,
    /// `tokenreviews`: create only, answered and forgotten.
    TokenReview,
    /// `selfsubjectaccessreviews`: create only, answered and forgotten.
    AccessReview,
}

pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// One served group-version-resource.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub verbs: Vec<String>,
    /// Subresources other than `status`, with their verbs (`token` on serviceaccounts).
    pub extra_subresources: Vec<(String, Vec<String>)>,
    pub status_subresource: bool,
    /// The key objects are stored under, shared by every version of a resource.
    pub storage: String,
    pub shape: Shape,
    pub special: Special,
    /// Whether `metadata.generation` is kept (custom resources, CRDs).
    pub generation: bool,
    /// Whether an update must carry `metadata.resourceVersion`.
    pub require_rv_on_update: bool,
    /// Whether DELETE answers with the object (else with a `Status`).
    pub delete_returns_object: bool,
    /// The CRD version's `openAPIV3Schema`, for custom resources.
    pub schema: Option<Value>,
    /// The structure used to merge lists (list types and keys); the schema for custom resources.
    pub structure: Value,
    /// `additionalPrinterColumns` of a custom resource.
    pub columns: Option<Value>,
    /// The CRD that installed this resource.
    pub crd: Option<String>,
}

impl ResourceInfo {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn allows(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }
}

/// Every served resource, keyed by (group, version, plural).
#[derive(Debug, Default)]
pub struct Registry {
    builtin: BTreeMap<(String, String, String), Arc<ResourceInfo>>,
    custom: BTreeMap<String, Vec<Arc<ResourceInfo>>>,
}

impl Registry {
    pub fn new() -> Self {
        let mut builtin = BTreeMap::new();
        for info in builtin::resources() {
            builtin.insert(
                (
                    info.group.clone(),
                    info.version.clone(),
                    info.plural.clone(),
                ),
                Arc::new(info),
            );
        }
        Registry {
            builtin,
            custom: BTreeMap::new(),
        }
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        let key = (group.to_string(), version.to_string(), plural.to_string());
        if let Some(info) = self.builtin.get(&key) {
            return Some(info.clone());
        }
        self.custom
            .values()
            .flatten()
            .find(|i| i.group == group && i.version == version && i.plural == plural)
            .cloned()
    }

    /// Installs (or replaces) the resources of one CRD.
    pub fn set_custom(&mut self, crd_name: &str, infos: Vec<ResourceInfo>) {
        self.custom.insert(
            crd_name.to_string(),
            infos.into_iter().map(Arc::new).collect(),
        );
    }

    pub fn remove_custom(&mut self, crd_name: &str) {
        self.custom.remove(crd_name);
    }

    /// Every served resource, built-in first.
    pub fn all(&self) -> Vec<Arc<ResourceInfo>> {
        self.builtin
            .values()
            .chain(self.custom.values().flatten())
            .cloned()
            .collect()
    }

    /// The groups served, each with its versions, the preferred version first.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for info in self.all() {
            let versions = groups.entry(info.group.clone()).or_default();
            if !versions.contains(&info.version) {
                versions.push(info.version.clone());
            }
        }
        let mut out: Vec<(String, Vec<String>)> = groups
            .into_iter()
            .map(|(g, mut v)| {
                v.sort_by_key(|x| std::cmp::Reverse(version_priority(x)));
                (g, v)
            })
            .collect();
        // The built-in groups first, as kube-apiserver lists them.
        out.sort_by_key(|(g, _)| (!builtin::is_builtin_group(g), g.clone()));
        out
    }

    pub fn in_group_version(&self, group: &str, version: &str) -> Vec<Arc<ResourceInfo>> {
        self.all()
            .into_iter()
            .filter(|i| i.group == group && i.version == version)
            .collect()
    }
}

/// Kubernetes version ordering: GA over beta over alpha, then the higher numbers.
pub fn version_priority(v: &str) -> (u8, u32, u32) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let Ok(major) = digits.parse::<u32>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    let (level, num) = if tail.is_empty() {
        (3, 0)
    } else if let Some(n) = tail.strip_prefix("beta") {
        (2, n.parse().unwrap_or(0))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n.parse().unwrap_or(0))
    } else {
        (0, 0)
    };
    (level, major, num)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_like_kubernetes() {
        let mut v = vec!["v1alpha1", "v2", "v1beta2", "v1", "v1beta1"];
        v.sort_by_key(|x| std::cmp::Reverse(version_priority(x)));
        assert_eq!(v, ["v2", "v1", "v1beta2", "v1beta1", "v1alpha1"]);
    }
}
