// as-policy: a Proxy-Wasm plugin written with the AssemblyScript SDK (@solo-io/proxy-runtime).
//
// It edits request and response headers as its configuration says, refuses requests to
// configured paths or carrying configured headers with a 403 of its own, numbers requests with a
// counter kept in shared data, counts requests and refusals in two metrics, and logs a line per
// request and per response.

// The callbacks the host calls (proxy_on_*), the ABI version marker and the allocator.
export * from "@solo-io/proxy-runtime/proxy";
import {
  Context,
  Counter,
  FilterHeadersStatusValues,
  GrpcStatusValues,
  HeaderPair,
  Headers,
  LogLevelValues,
  RootContext,
  log,
  registerRootContext,
  send_local_response,
  stream_context,
} from "@solo-io/proxy-runtime";
import {
  BufferTypeValues,
  HeaderMapTypeValues,
  Reference,
  WasmResultValues,
  add_header_map_value_string,
  clear_route_cache,
  get_buffer_bytes,
  get_property,
  replace_header_map_value_string,
  set_tick_period_milliseconds,
} from "@solo-io/proxy-runtime/runtime";
import { proxy_get_shared_data, proxy_set_shared_data } from "@solo-io/proxy-runtime/imports";
import { free } from "@solo-io/proxy-runtime/malloc";

/** The root id this module registers: the plugin entry's `root_id` must name it. */
const ROOT_ID = "as_policy";

/** The shared-data key of the request counter. */
const COUNTER_KEY = "requests";

/** One header edit: replace (`set-…`) or append (`add-…`). */
class HeaderRule {
  append: bool;
  name: string;
  value: string;

  constructor(append: bool, name: string, value: string) {
    this.append = append;
    this.name = name;
    this.value = value;
  }
}

/** The configuration, parsed. */
class Policy {
  request: Array<HeaderRule> = [];
  response: Array<HeaderRule> = [];
  denyPaths: Array<string> = [];
  denyHeaders: Array<string> = [];

  describe(): string {
    return (
      this.request.length.toString() + " request header rules, " +
      this.response.length.toString() + " response header rules, " +
      this.denyPaths.length.toString() + " refused paths, " +
      this.denyHeaders.length.toString() + " refused headers"
    );
  }
}

/** Splits "NAME VALUE" at the first space; the value may hold spaces. */
function headerRule(append: bool, args: string): HeaderRule | null {
  const space = args.indexOf(" ");
  if (space <= 0) return null;
  const value = args.substring(space + 1).trim();
  if (value.length == 0) return null;
  return new HeaderRule(append, args.substring(0, space).toLowerCase(), value);
}

/**
 * Reads the configuration into `policy`: one rule per line, blank lines and lines starting
 * with `#` ignored. Returns what is wrong with it, or "" when it is valid.
 */
function parse(text: string, policy: Policy): string {
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line.length == 0 || line.startsWith("#")) continue;
    const space = line.indexOf(" ");
    const directive = space < 0 ? line : line.substring(0, space);
    const args = space < 0 ? "" : line.substring(space + 1).trim();
    if (directive == "deny-path" && args.length > 0) {
      policy.denyPaths.push(args);
    } else if (directive == "deny-header" && args.length > 0) {
      policy.denyHeaders.push(args.toLowerCase());
    } else if (directive.endsWith("-request-header") || directive.endsWith("-response-header")) {
      const append = directive.startsWith("add-");
      if (!append && !directive.startsWith("set-")) return "unknown directive: " + line;
      const rule = headerRule(append, args);
      if (rule === null) return "want NAME VALUE after " + directive + ": " + line;
      if (directive.endsWith("-request-header")) {
        policy.request.push(rule);
      } else {
        policy.response.push(rule);
      }
    } else {
      return "unknown directive or missing argument: " + line;
    }
  }
  return "";
}

/** Applies header rules to a header map of the current stream. */
function apply(map: HeaderMapTypeValues, rules: Array<HeaderRule>): void {
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i];
    if (rule.append) {
      add_header_map_value_string(map, rule.name, rule.value);
    } else {
      replace_header_map_value_string(map, rule.name, rule.value);
    }
  }
}

/** Why the current request is refused, or "" when it may pass. */
function refusal(policy: Policy, path: string): string {
  for (let i = 0; i < policy.denyPaths.length; i++) {
    if (path.startsWith(policy.denyPaths[i])) return "path " + path;
  }
  for (let i = 0; i < policy.denyHeaders.length; i++) {
    const name = policy.denyHeaders[i];
    if (stream_context.headers.request.get(name).length > 0) return "header " + name;
  }
  return "";
}

/**
 * The next request number, from a counter in shared data that every instance of the plugin
 * sees, updated with compare-and-swap. 0 if the counter cannot be read or written.
 *
 * The SDK's own `get_shared_data` and `set_shared_data` wrappers (0.1.8) pass their buffers where
 * the ABI expects return slots and sizes, so this calls the SDK's declared imports directly.
 */
function nextRequestNumber(): u64 {
  const key = String.UTF8.encode(COUNTER_KEY);
  const valuePtr = new Reference<usize>();
  const valueSize = new Reference<usize>();
  const cas = new Reference<u32>();
  for (let attempt = 0; attempt < 8; attempt++) {
    valuePtr.data = 0;
    valueSize.data = 0;
    cas.data = 0;
    const got = proxy_get_shared_data(
      changetype<usize>(key), key.byteLength, valuePtr.ptr(), valueSize.ptr(), cas.ptr());
    if (got != WasmResultValues.Ok && got != WasmResultValues.NotFound) {
      log(LogLevelValues.warn, "cannot read the request counter: status " + got.toString());
      return 0;
    }
    let current: u64 = 0;
    if (valuePtr.data != 0) {
      // The host allocated the value with our `malloc`: read it, then hand it back.
      if (valueSize.data == sizeof<u64>()) current = load<u64>(valuePtr.data);
      free(valuePtr.data);
    }
    const next = current + 1;
    const value = new ArrayBuffer(sizeof<u64>() as i32);
    store<u64>(changetype<usize>(value), next);
    const set = proxy_set_shared_data(
      changetype<usize>(key), key.byteLength, changetype<usize>(value), value.byteLength,
      got == WasmResultValues.Ok ? cas.data : 0);
    if (set == WasmResultValues.Ok) return next;
    if (set != WasmResultValues.CasMismatch) {
      log(LogLevelValues.warn, "cannot write the request counter: status " + set.toString());
      return 0;
    }
    // Another instance counted a request in between: read again.
  }
  return 0;
}

class PolicyRoot extends RootContext {
  policy: Policy = new Policy();
  // Defined once per instance; the host gives every instance the same metric.
  requests: Counter = new Counter("policy_requests");
  refused: Counter = new Counter("policy_refused");

  // Reads the configuration itself rather than through RootContext.onConfigure, which (in SDK
  // 0.1.8) passes the configuration size where the host expects the address of a return slot.
  onConfigure(configuration_size: u32): bool {
    const text = String.UTF8.decode(
      get_buffer_bytes(BufferTypeValues.PluginConfiguration, 0, configuration_size));
    const policy = new Policy();
    const error = parse(text, policy);
    if (error.length > 0) {
      log(LogLevelValues.error, "invalid configuration: " + error);
      return false;
    }
    this.policy = policy;
    const name = String.UTF8.decode(get_property("plugin_name"));
    log(LogLevelValues.info, name + " configured: " + policy.describe());
    return true;
  }

  createContext(context_id: u32): Context {
    return new PolicyContext(context_id, this);
  }
}

class PolicyContext extends Context {
  policyRoot: PolicyRoot;
  number: u64 = 0;

  constructor(context_id: u32, root: PolicyRoot) {
    super(context_id, root);
    this.policyRoot = root;
  }

  onRequestHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const root = this.policyRoot;
    // `request.path` as a property (segments separated by NUL), the rest as headers.
    const path = String.UTF8.decode(get_property("request\0path"));
    const method = stream_context.headers.request.get(":method");
    const authority = stream_context.headers.request.get(":authority");
    this.number = nextRequestNumber();
    root.requests.increment(1);
    const tag = "#" + this.number.toString();
    log(LogLevelValues.info, tag + " " + method + " " + authority + path);

    const reason = refusal(root.policy, path);
    if (reason.length > 0) {
      root.refused.increment(1);
      log(LogLevelValues.warn, tag + " refused: " + reason);
      const extra: Headers = [
        new HeaderPair(String.UTF8.encode("x-refused-by"), String.UTF8.encode(ROOT_ID)),
      ];
      send_local_response(403, "as_policy_refused", String.UTF8.encode("refused: " + reason + "\n"),
        extra, GrpcStatusValues.InvalidCode);
      return FilterHeadersStatusValues.StopIteration;
    }
    apply(HeaderMapTypeValues.RequestHeaders, root.policy.request);
    stream_context.headers.request.replace("x-request-number", this.number.toString());
    // The request headers changed: a proxy that routes on them picks the route again.
    clear_route_cache();
    return FilterHeadersStatusValues.Continue;
  }

  onResponseHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    apply(HeaderMapTypeValues.ResponseHeaders, this.policyRoot.policy.response);
    const status = stream_context.headers.response.get(":status");
    log(LogLevelValues.info, "#" + this.number.toString() + " answered " + status);
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32): RootContext => new PolicyRoot(context_id), ROOT_ID);

/** The root id of the module's second root context, a background ticker. */
const TICKER_ID = "as_ticker";

/** How often the ticker ticks. */
const TICK_MS: u32 = 50;

/**
 * A root context without HTTP contexts, to run as a background plugin (`kind: background`,
 * `root_id: as_ticker`): it ticks, counting and logging each tick.
 */
class TickerRoot extends RootContext {
  count: u32 = 0;
  // Defined with the root context, so that the policy's instances do not define it.
  ticks: Counter | null = null;

  // The SDK's own onConfigure would read the configuration (see PolicyRoot): there is none.
  onConfigure(configuration_size: u32): bool {
    this.ticks = new Counter("as_ticker_ticks");
    set_tick_period_milliseconds(TICK_MS);
    log(LogLevelValues.info, "as-ticker: ticking every " + TICK_MS.toString() + " ms");
    return true;
  }

  onTick(): void {
    this.count += 1;
    const ticks = this.ticks;
    if (ticks != null) ticks.increment(1);
    log(LogLevelValues.info, "as-ticker: tick " + this.count.toString());
  }
}

registerRootContext((context_id: u32): RootContext => new TickerRoot(context_id), TICKER_ID);
