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

fn from_args(args: &[&str]) -> Result<Config, ConfigError> {
    let argv: Vec<String> = std::iter::once("proxlet-sidecar")
        .chain(args.iter().copied())
        .map(str::to_owned)
        .collect();
    let mut cli = <Cli as clap::Parser>::try_parse_from(&argv)
        .map_err(|e| ConfigError::invalid("argv", e.to_string()))?;
    cli.plugin_flags = plugin_flags(argv);
    Config::build(raw::File::default(), &cli)
}

#[test]
fn plugin_flags_grant_permissions_and_set_ids_per_plugin() -> Result<(), ConfigError> {
    let c = from_args(&[
        "--listen=127.0.0.1:1",
        "--upstream=127.0.0.1:2",
        "--cluster",
        "auth=127.0.0.1:9000",
        "--plugin",
        "a_plugin.wasm",
        "--plugin-body",
        "--plugin-http-call",
        "auth",
        "--plugin-vm-id=shared",
        "--plugin-shared-data",
        "--plugin",
        "ticker.wasm",
        "--plugin-kind",
        "background",
    ])?;
    let (a, t) = (&c.plugins[0], &c.plugins[1]);
    assert_eq!(a.name, "a-plugin");
    assert!(a.permissions.body && a.permissions.shared_data);
    assert_eq!(a.permissions.http_calls, ["auth"]);
    assert_eq!(a.vm_id.as_deref(), Some("shared"));
    assert_eq!(a.kind, plugins::PluginKind::Request);
    assert_eq!(a.root_id, None, "the root id stays Envoy's empty default");
    assert_eq!(t.kind, plugins::PluginKind::Background);
    assert!(!t.permissions.body && !t.permissions.shared_data);
    assert_eq!(c.clusters["auth"].address.port(), 9000);
    Ok(())
}

#[test]
fn plugin_flags_must_follow_a_plugin_and_clusters_must_parse() {
    let no_plugin = from_args(&[
        "--listen=127.0.0.1:1",
        "--upstream=127.0.0.1:2",
        "--plugin-body",
    ]);
    let msg = no_plugin.err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(msg, "--plugin-body: must follow a --plugin");
    let bad = from_args(&[
        "--listen=127.0.0.1:1",
        "--upstream=127.0.0.1:2",
        "--cluster=auth",
    ]);
    let msg = bad.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.starts_with("--cluster: \"auth\""), "{msg}");
}

#[test]
fn tag_rules_are_validated() {
    let yaml =
        format!("{MINIMAL}plugin_metrics: {{tags: [{{name: method, regex: 'method=\\w+'}}]}}\n");
    let msg = build(&yaml)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(msg.starts_with("plugin_metrics.tags.regex:"), "{msg}");
    let yaml = format!(
        "{MINIMAL}plugin_metrics: {{tags: [{{name: method, regex: '(\\.method=(\\w+))'}}]}}\n"
    );
    assert!(build(&yaml).is_ok());
}
