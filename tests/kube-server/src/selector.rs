//! Label selectors (`=`, `==`, `!=`, `in`, `notin`, exists, `!`) and field selectors
//! (`=`, `==`, `!=` over the fields a resource supports), parsed from query strings.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Req {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Vec<Req>);

/// Splits on commas that are not inside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_set(rest: &str, whole: &str) -> Result<Vec<String>, String> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("unable to parse requirement: found '{whole}', expected: '('"))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

fn parse_req(part: &str) -> Result<Req, String> {
    let part = part.trim();
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Req::NotExists(key.trim().to_string()));
    }
    if let Some((k, v)) = part.split_once("!=") {
        return Ok(Req::Ne(k.trim().to_string(), v.trim().to_string()));
    }
    if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Ok(Req::Eq(k.trim().to_string(), v.trim().to_string()));
    }
    let mut words = part.splitn(2, char::is_whitespace);
    let key = words.next().unwrap_or_default().to_string();
    let rest = words.next().unwrap_or_default().trim();
    if let Some(set) = rest.strip_prefix("notin") {
        return Ok(Req::NotIn(key, parse_set(set, part)?));
    }
    if let Some(set) = rest.strip_prefix("in") {
        return Ok(Req::In(key, parse_set(set, part)?));
    }
    if rest.is_empty() && !key.is_empty() {
        return Ok(Req::Exists(key));
    }
    Err(format!("unable to parse requirement: {part}"))
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.trim().is_empty() {
            return Ok(Self::default());
        }
        split_top(s)
            .into_iter()
            .map(parse_req)
            .collect::<Result<Vec<_>, _>>()
            .map(LabelSelector)
    }

    /// Whether the labels of `object` satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Req::Eq(k, v) => get(k) == Some(v.as_str()),
            Req::Ne(k, v) => get(k) != Some(v.as_str()),
            Req::In(k, set) => get(k).is_some_and(|l| set.iter().any(|s| s == l)),
            Req::NotIn(k, set) => get(k).is_none_or(|l| set.iter().all(|s| s != l)),
            Req::Exists(k) => get(k).is_some(),
            Req::NotExists(k) => get(k).is_none(),
        })
    }
}

/// A parsed field selector: `(path, wanted, equal?)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector(Vec<(String, String, bool)>);

impl FieldSelector {
    /// Parses `s`, refusing fields not in `supported` as the API server does.
    pub fn parse(s: &str, supported: &[&str]) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value, eq) = if let Some((k, v)) = part.split_once("!=") {
                (k, v, false)
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (k, v, true)
            } else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            let key = key.trim();
            if !supported.contains(&key) {
                return Err(format!("field label not supported: {key}"));
            }
            reqs.push((key.to_string(), value.trim().to_string(), eq));
        }
        Ok(FieldSelector(reqs))
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(path, want, eq)| {
            let mut v = object;
            for part in path.split('.') {
                v = &v[part];
            }
            let got = match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (got == *want) == *eq
        })
    }

    /// The name an equality on `metadata.name` pins, if any.
    pub fn pinned_name(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|(p, _, eq)| p == "metadata.name" && *eq)
            .map(|(_, v, _)| v.as_str())
    }
}

/// The fields a resource can be selected by (in its stored shape).
pub fn supported_fields(plural: &str) -> Vec<&'static str> {
    let mut fields = vec!["metadata.name", "metadata.namespace"];
    match plural {
        "events" => fields.extend([
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ]),
        "pods" => fields.extend([
            "spec.nodeName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
        ]),
        "secrets" => fields.push("type"),
        "namespaces" => fields.push("status.phase"),
        _ => {}
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labeled(labels: Value) -> Value {
        let mut o = json!({"metadata": {"name": "x"}});
        o["metadata"]["labels"] = labels;
        o
    }

    #[test]
    fn label_selectors_match_like_kubernetes() {
        let o = labeled(json!({"app": "web", "tier": "front"}));
        let yes = [
            "app=web",
            "app==web",
            "app!=db",
            "app in (web, db)",
            "tier notin (back)",
            "app",
            "!missing",
            "app=web,tier in (front)",
            "",
        ];
        for s in yes {
            assert!(
                LabelSelector::parse(s).map(|l| l.matches(&o)) == Ok(true),
                "{s}"
            );
        }
        let no = [
            "app=db",
            "app!=web",
            "app in (db)",
            "tier notin (front)",
            "missing",
            "!app",
        ];
        for s in no {
            assert!(
                LabelSelector::parse(s).map(|l| l.matches(&o)) == Ok(false),
                "{s}"
            );
        }
        assert!(LabelSelector::parse("app in web").is_err());
    }

    #[test]
    fn field_selectors_refuse_unknown_fields() {
        let f = FieldSelector::parse("metadata.name=x", &supported_fields("configmaps"));
        assert!(f.is_ok_and(|f| f.matches(&labeled(json!({})))));
        let err = FieldSelector::parse("spec.foo=1", &supported_fields("configmaps"));
        assert_eq!(err, Err("field label not supported: spec.foo".to_string()));
    }
}
