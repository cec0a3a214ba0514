//! Whether a pod's labels match a `LabelSelector`, by Kubernetes' rules: every `matchLabels`
//! pair and every `matchExpressions` requirement must hold; an empty selector matches every pod.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// True when `labels` satisfy `selector` (`None` selects everything).
pub fn matches(selector: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    let pairs = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    pairs
        && selector.match_expressions.iter().flatten().all(|e| {
            let value = labels.get(&e.key);
            let listed = |v: &String| e.values.iter().flatten().any(|x| x == v);
            match e.operator.as_str() {
                "In" => value.is_some_and(listed),
                "NotIn" => !value.is_some_and(listed),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                // The API server refuses other operators; a selector it could not hold selects nothing.
                _ => false,
            }
        })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    fn expr(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: Some(values.iter().map(|v| (*v).into()).collect()),
        }
    }

    #[test]
    fn kubernetes_rules() {
        let pod = labels(&[("app", "shop"), ("tier", "web")]);
        assert!(matches(None, &pod));
        assert!(matches(Some(&LabelSelector::default()), &pod));
        let by_label = |pairs: &[(&str, &str)]| LabelSelector {
            match_labels: Some(labels(pairs)),
            ..Default::default()
        };
        assert!(matches(Some(&by_label(&[("app", "shop")])), &pod));
        assert!(!matches(
            Some(&by_label(&[("app", "shop"), ("tier", "db")])),
            &pod
        ));
        let by_expr = |e| LabelSelector {
            match_expressions: Some(vec![e]),
            ..Default::default()
        };
        assert!(matches(
            Some(&by_expr(expr("tier", "In", &["web", "api"]))),
            &pod
        ));
        assert!(!matches(
            Some(&by_expr(expr("tier", "NotIn", &["web"]))),
            &pod
        ));
        assert!(matches(Some(&by_expr(expr("zone", "NotIn", &["a"]))), &pod));
        assert!(matches(Some(&by_expr(expr("app", "Exists", &[]))), &pod));
        assert!(!matches(
            Some(&by_expr(expr("app", "DoesNotExist", &[]))),
            &pod
        ));
        assert!(!matches(Some(&by_expr(expr("app", "Gt", &["1"]))), &pod));
    }
}
