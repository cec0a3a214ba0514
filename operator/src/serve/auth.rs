//! Who is asking the plugin-set server: a service-account token (audience `proxlet`, from the
//! sidecar's projected volume), reviewed by the API server with a TokenReview. The review names
//! the account's namespace and, for a token bound to a pod (as every projected token is), the
//! pod. Verdicts are cached for a minute (refusals for a few seconds) by the token's digest.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::Client;
use kube::api::{Api, PostParams};
use proxlet_crds::Digest;
use proxlet_crds::plugin_set::TOKEN_AUDIENCE;

/// How long an accepted token's identity is remembered.
const ACCEPTED_FOR: Duration = Duration::from_secs(60);
/// How long a refused token's verdict is remembered (a flood of bad tokens costs one review each
/// this often).
const REFUSED_FOR: Duration = Duration::from_secs(5);
/// Cached verdicts beyond this are all forgotten at once.
const MAX_CACHED: usize = 20_000;
/// The extra field TokenReview fills in for a token bound to a pod.
const POD_NAME: &str = "authentication.kubernetes.io/pod-name";

/// A sidecar, as its token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub namespace: String,
    pub service_account: String,
    /// The pod the token is bound to, when it is.
    pub pod: Option<String>,
}

/// Why a request was refused; each is a metric label and an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No bearer token.
    NoToken,
    /// The API server did not accept the token (forged, expired, another audience).
    Unauthenticated,
    /// Authenticated, but not as a service account.
    NotServiceAccount,
    /// A service account of another namespace than the one asked about.
    WrongNamespace,
    /// A pod-bound token used for another pod's report.
    WrongPod,
    /// A module or artifact the namespace's set does not reference.
    NotInSet,
}

impl Refusal {
    pub const ALL: [Self; 6] = [
        Self::NoToken,
        Self::Unauthenticated,
        Self::NotServiceAccount,
        Self::WrongNamespace,
        Self::WrongPod,
        Self::NotInSet,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::NoToken => "no_token",
            Self::Unauthenticated => "unauthenticated",
            Self::NotServiceAccount => "not_service_account",
            Self::WrongNamespace => "wrong_namespace",
            Self::WrongPod => "wrong_pod",
            Self::NotInSet => "not_in_set",
        }
    }

    /// 401 when the caller is unknown, 403 when it is known but not allowed.
    pub fn status(self) -> http::StatusCode {
        match self {
            Self::NoToken | Self::Unauthenticated => http::StatusCode::UNAUTHORIZED,
            _ => http::StatusCode::FORBIDDEN,
        }
    }
}

/// Failures to ask, as opposed to answers.
#[derive(Debug, thiserror::Error)]
#[error("TokenReview failed: {0}")]
pub struct ReviewError(#[from] kube::Error);

/// A token's verdict and until when it holds, by the token's digest.
type Verdicts = HashMap<Digest, (Result<Identity, Refusal>, Instant)>;

/// Reviews tokens, with the cache.
pub struct Authenticator {
    client: Client,
    cache: Mutex<Verdicts>,
}

impl Authenticator {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The identity behind `Authorization: Bearer TOKEN`.
    pub async fn identify(
        &self,
        authorization: Option<&str>,
    ) -> Result<Result<Identity, Refusal>, ReviewError> {
        let Some(token) = authorization
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
        else {
            return Ok(Err(Refusal::NoToken));
        };
        let key = Digest::of(token.as_bytes());
        let now = Instant::now();
        if let Some((verdict, until)) = self.lock().get(&key)
            && *until > now
        {
            return Ok(verdict.clone());
        }
        let verdict = self.review(token).await?;
        let ttl = if verdict.is_ok() {
            ACCEPTED_FOR
        } else {
            REFUSED_FOR
        };
        let mut cache = self.lock();
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(key, (verdict.clone(), now + ttl));
        Ok(verdict)
    }

    async fn review(&self, token: &str) -> Result<Result<Identity, Refusal>, ReviewError> {
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_owned(),
                audiences: Some(vec![TOKEN_AUDIENCE.to_owned()]),
            },
            ..Default::default()
        };
        let answer = api.create(&PostParams::default(), &review).await?;
        let Some(status) = answer.status else {
            return Ok(Err(Refusal::Unauthenticated));
        };
        let audience_ok = status
            .audiences
            .iter()
            .flatten()
            .any(|a| a == TOKEN_AUDIENCE);
        if status.authenticated != Some(true) || !audience_ok {
            return Ok(Err(Refusal::Unauthenticated));
        }
        let user = status.user.unwrap_or_default();
        let name = user.username.unwrap_or_default();
        Ok(parse_service_account(&name)
            .map(|(namespace, service_account)| Identity {
                namespace: namespace.to_owned(),
                service_account: service_account.to_owned(),
                pod: user
                    .extra
                    .as_ref()
                    .and_then(|e| e.get(POD_NAME))
                    .and_then(|v| v.first().cloned()),
            })
            .ok_or(Refusal::NotServiceAccount))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Verdicts> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `system:serviceaccount:NAMESPACE:NAME` → `(NAMESPACE, NAME)`.
fn parse_service_account(username: &str) -> Option<(&str, &str)> {
    let rest = username.strip_prefix("system:serviceaccount:")?;
    let (ns, name) = rest.split_once(':')?;
    (!ns.is_empty() && !name.is_empty()).then_some((ns, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_names() {
        assert_eq!(
            parse_service_account("system:serviceaccount:shop:default"),
            Some(("shop", "default"))
        );
        assert_eq!(parse_service_account("admin"), None);
        assert_eq!(parse_service_account("system:serviceaccount:shop"), None);
        assert_eq!(parse_service_account("system:serviceaccount::x"), None);
    }
}
