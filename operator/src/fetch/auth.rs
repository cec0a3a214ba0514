//! Registry credentials: the `.dockerconfigjson` of a `kubernetes.io/dockerconfigjson` Secret,
//! and the same format in a user's `~/.docker/config.json` (for the CLI commands).
//!
//! `auths` maps a registry to either `auth` (base64 of `user:password`) or `username` and
//! `password`; a `registrytoken` is used as a bearer token. Keys are matched by host and port
//! whatever scheme or path they carry (`https://index.docker.io/v1/` means Docker Hub).
//! Credential helpers (`credsStore`, `credHelpers`) are not run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

/// Credentials by registry host.
#[derive(Clone, Default)]
pub struct Credentials {
    by_host: HashMap<String, RegistryAuth>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.by_host.keys()).finish()
    }
}

#[derive(Deserialize)]
struct ConfigFile {
    auths: Option<HashMap<String, AuthEntry>>,
}

#[derive(Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    registrytoken: Option<String>,
}

impl Credentials {
    /// No credentials: anonymous pulls.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// Parses `.dockerconfigjson` bytes; the error says what is wrong, never a secret.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let file: ConfigFile = serde_json::from_slice(bytes)
            .map_err(|e| format!("not a docker config JSON document: {e}"))?;
        let auths = file
            .auths
            .ok_or_else(|| "it has no \"auths\" object".to_owned())?;
        let mut by_host = HashMap::new();
        for (key, entry) in auths {
            let auth =
                entry_auth(&entry).map_err(|problem| format!("auths[{key:?}]: {problem}"))?;
            if let Some(auth) = auth {
                by_host.insert(normalize_host(&key), auth);
            }
        }
        Ok(Self { by_host })
    }

    /// The user's Docker/Podman credentials: `$REGISTRY_AUTH_FILE`, else
    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`; none when the file is absent.
    pub fn from_user_config() -> Result<Self, String> {
        let Some(path) = user_config_path() else {
            return Ok(Self::anonymous());
        };
        match std::fs::read(&path) {
            Ok(bytes) => Self::parse(&bytes).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::anonymous()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// The credentials for `registry` (`host[:port]`), anonymous when there are none.
    pub fn for_registry(&self, registry: &str) -> RegistryAuth {
        self.by_host
            .get(&normalize_host(registry))
            .cloned()
            .unwrap_or(RegistryAuth::Anonymous)
    }
}

fn entry_auth(entry: &AuthEntry) -> Result<Option<RegistryAuth>, String> {
    if let Some(token) = entry.registrytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(RegistryAuth::Bearer(token.to_owned())));
    }
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| "\"auth\" is not base64".to_owned())?;
        let text = String::from_utf8(decoded).map_err(|_| "\"auth\" is not UTF-8".to_owned())?;
        let (user, password) = text
            .split_once(':')
            .ok_or_else(|| "\"auth\" is not base64 of user:password".to_owned())?;
        return Ok(Some(RegistryAuth::Basic(
            user.to_owned(),
            password.to_owned(),
        )));
    }
    match (&entry.username, &entry.password) {
        (Some(user), Some(password)) => {
            Ok(Some(RegistryAuth::Basic(user.clone(), password.clone())))
        }
        (Some(_), None) => Err("\"username\" without \"password\"".to_owned()),
        _ => Ok(None),
    }
}

/// `https://index.docker.io/v1/` → `docker.io`; `http://r:5000/v2/` → `r:5000`.
fn normalize_host(key: &str) -> String {
    let rest = key.split_once("://").map_or(key, |(_, rest)| rest);
    let host = rest.split('/').next().unwrap_or(rest).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".into()
        }
        _ => host,
    }
}

fn user_config_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("REGISTRY_AUTH_FILE") {
        return Some(PathBuf::from(path));
    }
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(Path::new(&dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|home| Path::new(&home).join(".docker/config.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn auth_field_and_username_password() {
        let json = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}},
                "127.0.0.1:5000":{{"username":"u","password":"p:w"}},
                "ghcr.io":{{"registrytoken":"tok"}}}}}}"#,
            b64("alice:s3cr:et")
        );
        let creds = Credentials::parse(json.as_bytes()).unwrap();
        assert_eq!(
            creds.for_registry("docker.io"),
            RegistryAuth::Basic("alice".into(), "s3cr:et".into())
        );
        assert_eq!(
            creds.for_registry("127.0.0.1:5000"),
            RegistryAuth::Basic("u".into(), "p:w".into())
        );
        assert_eq!(
            creds.for_registry("ghcr.io"),
            RegistryAuth::Bearer("tok".into())
        );
        assert_eq!(creds.for_registry("quay.io"), RegistryAuth::Anonymous);
    }

    #[test]
    fn invalid_documents_say_why_without_secrets() {
        let err = |json: &str| Credentials::parse(json.as_bytes()).unwrap_err();
        assert!(err("{").contains("not a docker config JSON"));
        assert!(err(r#"{"r.io":{"auth":"x"}}"#).contains("no \"auths\""));
        assert!(err(r#"{"auths":{"r.io":{"auth":"!!"}}}"#).contains("not base64"));
        let no_colon = format!(r#"{{"auths":{{"r.io":{{"auth":"{}"}}}}}}"#, b64("secret"));
        let message = err(&no_colon);
        assert!(message.contains("user:password") && !message.contains("secret\""));
    }

    #[test]
    fn keys_match_by_host() {
        assert_eq!(
            normalize_host("http://R.example:5000/v2/"),
            "r.example:5000"
        );
        assert_eq!(normalize_host("registry-1.docker.io"), "docker.io");
    }
}
