use super::*;

fn build(yaml: &str) -> Result<Config, ConfigError> {
    Config::build(Config::parse_yaml(yaml)?, &Cli::default())
}

const MINIMAL: &str = "listener: {address: 127.0.0.1:15001}\nupstream: {address: 127.0.0.1:8080}\n";

#[test]
fn minimal_file_gets_documented_defaults() -> Result<(), ConfigError> {
    let c = build(MINIMAL)?;
    assert_eq!(c.admin, SocketAddr::from(([127, 0, 0, 1], 15000)));
    assert_eq!(c.upstream.protocol, UpstreamProtocol::Auto);
    assert_eq!(c.upstream.response_timeout, Duration::from_secs(15));
    assert_eq!(c.limits.max_headers, 100);
    assert!(c.forwarded.x_forwarded_for);
    Ok(())
}

#[test]
fn unknown_field_is_named_with_its_path() {
    let err = build(&format!("{MINIMAL}limits: {{max_header: 3}}\n")).map(|_| ());
    let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        msg.starts_with("limits: unknown field `max_header`"),
        "{msg}"
    );
}

#[test]
fn bad_enum_lists_allowed_values() {
    let yaml =
        "listener: {address: 127.0.0.1:1}\nupstream: {address: 127.0.0.1:2, protocol: http3}\n";
    let msg = build(yaml).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        msg.starts_with("upstream.protocol: unknown variant `http3`"),
        "{msg}"
    );
    assert!(msg.contains("`http1`, `http2`, `auto`"), "{msg}");
}

#[test]
fn bad_duration_is_named() {
    let yaml = format!("{MINIMAL}limits: {{header_read_timeout: soon}}\n");
    let msg = build(&yaml)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(msg.starts_with("limits.header_read_timeout:"), "{msg}");
}

#[test]
fn zero_limits_are_refused() {
    let yaml = format!("{MINIMAL}limits: {{max_connections: 0}}\n");
    let msg = build(&yaml)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(msg, "limits.max_connections: must be at least 1");
}

#[test]
fn missing_upstream_names_the_flag_too() {
    let msg = build("listener: {address: 127.0.0.1:1}\n")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(msg, "upstream.address: required (or --upstream)");
}

#[test]
fn flags_override_the_file() -> Result<(), ConfigError> {
    let cli = Cli {
        upstream: Some(SocketAddr::from(([127, 0, 0, 1], 9))),
        upstream_protocol: Some(UpstreamProtocol::Http2),
        ..Cli::default()
    };
    let c = Config::build(Config::parse_yaml(MINIMAL)?, &cli)?;
    assert_eq!(c.upstream.address.port(), 9);
    assert_eq!(c.upstream.protocol, UpstreamProtocol::Http2);
    Ok(())
}
