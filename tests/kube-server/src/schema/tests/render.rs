use serde_json::json;

use crate::schema::render::{go_float, go_json, go_quote, go_value};

#[test]
fn floats_print_like_go_percent_v() {
    assert_eq!(go_float(1_000_000.0), "1e+06");
    assert_eq!(go_float(123_456.0), "123456");
    assert_eq!(go_float(1_234_567.0), "1.234567e+06");
    assert_eq!(go_float(0.000_01), "1e-05");
    assert_eq!(go_float(0.0001), "0.0001");
    assert_eq!(go_float(1.5), "1.5");
    assert_eq!(go_float(-2.0), "-2");
    assert_eq!(go_float(0.0), "0");
}

#[test]
fn bad_values_print_like_field_errors() {
    assert_eq!(go_value(&json!(5000)), "5000");
    assert_eq!(go_value(&json!(2.5)), "2.5");
    assert_eq!(go_value(&json!(true)), "true");
    assert_eq!(go_value(&json!("a\"b\n")), r#""a\"b\n""#);
    assert_eq!(go_value(&json!(null)), "null");
    assert_eq!(
        go_value(&json!({"b": 1, "a": [1, "x"]})),
        r#"{"a":[1,"x"],"b":1}"#
    );
}

#[test]
fn json_escapes_html_and_formats_floats_like_encoding_json() {
    assert_eq!(go_json(&json!("<a&b>")), r#""\u003ca\u0026b\u003e""#);
    assert_eq!(go_json(&json!(1e21)), "1e+21");
    assert_eq!(go_json(&json!(1e-7)), "1e-7");
    assert_eq!(go_json(&json!(1_000_000.5)), "1000000.5");
}

#[test]
fn quotes_control_characters_like_strconv() {
    assert_eq!(go_quote("tab\there"), r#""tab\there""#);
    assert_eq!(go_quote("\u{1}"), r#""\x01""#);
    assert_eq!(go_quote("é"), "\"é\"");
}
