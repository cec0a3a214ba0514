//! The server's own life: it announces its address, writes a kubeconfig, and stops by itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::Server;

#[test]
fn stops_when_stdin_closes() {
    let mut s = Server::start(&[]);
    let config = std::fs::read_to_string(&s.kubeconfig).unwrap();
    assert!(
        config.contains(&format!("server: http://{}", s.addr)),
        "{config}"
    );
    assert!(
        config.contains(&format!("token: {}", support::TOKEN)),
        "{config}"
    );
    assert!(s.stop_with(None), "still running after stdin closed");
}

#[test]
fn stops_on_sigterm_and_sigint() {
    let mut s = Server::start(&[]);
    assert!(s.stop_with(Some("TERM")), "still running after SIGTERM");
    let mut s = Server::start(&[]);
    assert!(s.stop_with(Some("INT")), "still running after SIGINT");
}
