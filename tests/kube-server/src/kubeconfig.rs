//! The kubeconfig the server writes for its clients: one cluster at its address, one user with
//! the bearer token, one context whose default namespace is `default`. kubectl and kube-rs both
//! read it through `KUBECONFIG`.

use std::net::SocketAddr;
use std::path::Path;

pub const NAME: &str = "kube-test-server";

pub fn render(addr: SocketAddr, token: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {NAME}
  cluster:
    server: http://{addr}
contexts:
- name: {NAME}
  context:
    cluster: {NAME}
    user: proxlet-test-admin
    namespace: default
current-context: {NAME}
users:
- name: proxlet-test-admin
  user:
    token: {token}
preferences: {{}}
"
    )
}

pub fn write(path: &Path, addr: SocketAddr, token: &str) -> std::io::Result<()> {
    std::fs::write(path, render(addr, token))
}
