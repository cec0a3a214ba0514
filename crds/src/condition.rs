//! The conditions the operator sets on a `ProxyPlugin`, and the reasons that mean success.
//!
//! A failure's reason comes from the operator's error kinds (`RegistryUnreachable`,
//! `NoProxyWasmAbi`, …): each is a fixed CamelCase word documented in `docs/operator.md`.

/// The `type` of a condition on a `ProxyPlugin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionType {
    /// The module reference resolved to a digest and its bytes are in the operator's cache.
    Fetched,
    /// The module compiled with the sidecar's engine settings and speaks the Proxy-Wasm ABI.
    Validated,
    /// The module is offered to the matching sidecars, and none of them refused it.
    Ready,
    /// Every matching sidecar runs the module in force.
    Loaded,
}

impl ConditionType {
    pub const ALL: [Self; 4] = [Self::Fetched, Self::Validated, Self::Ready, Self::Loaded];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fetched => "Fetched",
            Self::Validated => "Validated",
            Self::Ready => "Ready",
            Self::Loaded => "Loaded",
        }
    }
}

/// Reasons of conditions that are `True`, and of the ones that wait on another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Fetched: pulled from its source now.
    Pulled,
    /// Fetched: the digest was already in the operator's cache.
    Cached,
    /// Fetched (False): the last pull failed but an earlier digest stays in force.
    StaleDigest,
    /// Validated: compiled and exports a Proxy-Wasm ABI version.
    Valid,
    /// Validated / Ready (Unknown or False): waiting for an earlier step.
    NotFetched,
    /// Ready: offered to the matching sidecars.
    Offered,
    /// Ready (False): the module did not validate.
    ValidationFailed,
    /// Ready (False): the module could not be fetched and there is no earlier digest.
    FetchFailed,
    /// Any (Unknown): the operator is working on it.
    Reconciling,
    /// Loaded: every matching sidecar runs the module in force.
    AllLoaded,
    /// Loaded (False): some matching sidecars do not run it yet.
    Propagating,
    /// Loaded (False): no sidecar that reports to the operator matches the selector.
    NoMatchingSidecars,
    /// Loaded and Ready (False): a matching sidecar could not load it.
    LoadFailed,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pulled => "Pulled",
            Self::Cached => "Cached",
            Self::StaleDigest => "StaleDigest",
            Self::Valid => "Valid",
            Self::NotFetched => "NotFetched",
            Self::Offered => "Offered",
            Self::ValidationFailed => "ValidationFailed",
            Self::FetchFailed => "FetchFailed",
            Self::Reconciling => "Reconciling",
            Self::AllLoaded => "AllLoaded",
            Self::Propagating => "Propagating",
            Self::NoMatchingSidecars => "NoMatchingSidecars",
            Self::LoadFailed => "LoadFailed",
        }
    }
}
