//! Who is calling, and what they may not do: the kubeconfig's bearer token, the service-account
//! tokens minted by TokenRequest, and the `--forbid VERB:RESOURCE` rules that answer 403.
//!
//! There is no other authorization: every authenticated caller may do everything not forbidden.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::meta;

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl User {
    pub fn to_json(&self) -> Value {
        let mut u = json!({"username": self.name, "uid": self.uid, "groups": self.groups});
        if !self.extra.is_empty() {
            u["extra"] = json!(self.extra);
        }
        u
    }
}

/// What a minted token stands for.
#[derive(Debug, Clone)]
pub struct Minted {
    pub namespace: String,
    pub service_account: String,
    pub sa_uid: String,
    pub audiences: Vec<String>,
    pub expires: SystemTime,
    /// The pod the token is bound to: name and uid.
    pub pod: Option<(String, String)>,
}

impl Minted {
    pub fn user(&self) -> User {
        let mut extra = BTreeMap::new();
        if let Some((name, uid)) = &self.pod {
            extra.insert(
                "authentication.kubernetes.io/pod-name".to_string(),
                vec![name.clone()],
            );
            extra.insert(
                "authentication.kubernetes.io/pod-uid".to_string(),
                vec![uid.clone()],
            );
        }
        User {
            name: format!(
                "system:serviceaccount:{}:{}",
                self.namespace, self.service_account
            ),
            uid: self.sa_uid.clone(),
            groups: vec![
                "system:serviceaccounts".to_string(),
                format!("system:serviceaccounts:{}", self.namespace),
                "system:authenticated".to_string(),
            ],
            extra,
        }
    }
}

pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// The tokens the server accepts.
#[derive(Debug)]
pub struct Tokens {
    admin: String,
    minted: HashMap<String, Minted>,
}

impl Tokens {
    pub fn new(admin: String) -> Self {
        Tokens {
            admin,
            minted: HashMap::new(),
        }
    }

    pub fn admin_user() -> User {
        User {
            name: "proxlet-test-admin".to_string(),
            uid: String::new(),
            groups: vec![
                "system:masters".to_string(),
                "system:authenticated".to_string(),
            ],
            extra: BTreeMap::new(),
        }
    }

    /// The minted token's record, if it is known and not expired.
    pub fn minted(&self, token: &str) -> Option<&Minted> {
        self.minted
            .get(token)
            .filter(|m| m.expires > SystemTime::now())
    }

    pub fn authenticate(&self, token: &str) -> Option<User> {
        if token == self.admin {
            return Some(Self::admin_user());
        }
        self.minted(token).map(Minted::user)
    }

    /// Mints a JWT-shaped token for a service account; returns it with its expiry.
    pub fn mint(&mut self, m: Minted) -> (String, SystemTime) {
        let now = SystemTime::now();
        let secs = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default()
        };
        let mut claims = json!({
            "aud": m.audiences,
            "exp": secs(m.expires),
            "iat": secs(now),
            "nbf": secs(now),
            "iss": ISSUER,
            "sub": format!("system:serviceaccount:{}:{}", m.namespace, m.service_account),
            "kubernetes.io": {
                "namespace": m.namespace,
                "serviceaccount": {"name": m.service_account, "uid": m.sa_uid},
            },
        });
        if let Some((name, uid)) = &m.pod {
            claims["kubernetes.io"]["pod"] = json!({"name": name, "uid": uid});
        }
        let header = json!({"alg": "RS256", "kid": "proxlet-test"});
        let token = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            URL_SAFE_NO_PAD.encode(meta::random_bytes::<32>()),
        );
        let expires = m.expires;
        self.minted.insert(token.clone(), m);
        (token, expires)
    }
}

/// The default and bounds of `expirationSeconds` in a TokenRequest.
pub fn token_lifetime(requested: Option<u64>) -> Duration {
    Duration::from_secs(requested.unwrap_or(3600).max(600))
}

/// One `--forbid VERB:RESOURCE` rule; RESOURCE is `plural[.group][/subresource]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ForbidRule {
    pub verb: String,
    pub resource: String,
    pub group: Option<String>,
    pub sub: Option<String>,
}

impl std::str::FromStr for ForbidRule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (verb, res) = s
            .split_once(':')
            .ok_or_else(|| format!("expected VERB:RESOURCE, got {s:?}"))?;
        let (res, sub) = match res.split_once('/') {
            Some((r, s)) => (r, Some(s.to_string())),
            None => (res, None),
        };
        let (resource, group) = match res.split_once('.') {
            Some((r, g)) => (r.to_string(), Some(g.to_string())),
            None => (res.to_string(), None),
        };
        if verb.is_empty() || resource.is_empty() {
            return Err(format!("expected VERB:RESOURCE, got {s:?}"));
        }
        Ok(ForbidRule {
            verb: verb.to_string(),
            resource,
            group,
            sub,
        })
    }
}

/// What a request does, for the forbid rules and their message.
pub struct Attributes<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    pub resource: &'a str,
    pub sub: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
}

impl ForbidRule {
    pub fn matches(&self, a: &Attributes<'_>) -> bool {
        (self.verb == "*" || self.verb == a.verb)
            && (self.resource == "*" || self.resource == a.resource)
            && self.group.as_deref().is_none_or(|g| g == a.group)
            && self.sub.as_deref() == a.sub
    }
}

/// The real server's wording of an RBAC refusal.
pub fn forbidden_message(user: &User, a: &Attributes<'_>) -> String {
    let qualified = crate::status::qualify(a.resource, a.group);
    let subject = match a.name {
        Some(n) => format!("{qualified} \"{n}\""),
        None => qualified,
    };
    let resource = match a.sub {
        Some(s) => format!("{}/{s}", a.resource),
        None => a.resource.to_string(),
    };
    let scope = match a.namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    format!(
        "{subject} is forbidden: User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}",
        user.name, a.verb, a.group
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbid_rules_parse_and_word_like_rbac() {
        let r: ForbidRule = "patch:proxyplugins.proxlet.dev/status".parse().unwrap();
        let a = Attributes {
            verb: "patch",
            group: "proxlet.dev",
            resource: "proxyplugins",
            sub: Some("status"),
            namespace: Some("default"),
            name: Some("p"),
        };
        assert!(r.matches(&a));
        let msg = forbidden_message(&Tokens::admin_user(), &a);
        assert_eq!(
            msg,
            "proxyplugins.proxlet.dev \"p\" is forbidden: User \"proxlet-test-admin\" cannot patch resource \"proxyplugins/status\" in API group \"proxlet.dev\" in the namespace \"default\""
        );
        assert!("secrets".parse::<ForbidRule>().is_err());
    }
}
