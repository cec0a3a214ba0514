//! The sidecar's YAML configuration as a test builds it: a tree set by dotted paths.

use anyhow::{Result, bail};
use serde_yaml::{Mapping, Value};

/// A YAML mapping edited by dotted paths (`limits.max_connections`).
#[derive(Clone, Debug, Default)]
pub struct ConfigTree {
    root: Mapping,
}

impl ConfigTree {
    /// Sets `path` to `value`, creating the mappings on the way.
    pub fn set(&mut self, path: &str, value: Value) {
        let mut keys: Vec<&str> = path.split('.').collect();
        let Some(last) = keys.pop() else { return };
        let mut node = &mut self.root;
        for key in keys {
            let entry = node
                .entry(Value::from(key))
                .or_insert_with(|| Value::Mapping(Mapping::new()));
            if !entry.is_mapping() {
                *entry = Value::Mapping(Mapping::new());
            }
            let Value::Mapping(next) = entry else { return };
            node = next;
        }
        node.insert(Value::from(last), value);
    }

    /// Appends `value` to the list at `path`, creating the list (and the mappings on the way).
    pub fn push(&mut self, path: &str, value: Value) {
        let list = match self.get(path) {
            Some(Value::Sequence(list)) => {
                let mut list = list.clone();
                list.push(value);
                list
            }
            _ => vec![value],
        };
        self.set(path, Value::Sequence(list));
    }

    /// The whole tree as one YAML mapping.
    pub fn to_value(&self) -> Value {
        Value::Mapping(self.root.clone())
    }

    /// The value at `path`, if set.
    pub fn get(&self, path: &str) -> Option<&Value> {
        let mut keys = path.split('.');
        let mut node = self.root.get(keys.next()?)?;
        for key in keys {
            node = node.as_mapping()?.get(key)?;
        }
        Some(node)
    }

    /// The YAML text.
    pub fn to_yaml(&self) -> Result<String> {
        if self.root.is_empty() {
            bail!("empty configuration");
        }
        Ok(serde_yaml::to_string(&self.root)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_nested_paths() -> Result<()> {
        let mut tree = ConfigTree::default();
        tree.set("listener.address", "127.0.0.1:1".into());
        tree.set("limits.max_connections", 1.into());
        tree.set("listener.tls.cert", "/c.pem".into());
        let yaml = tree.to_yaml()?;
        let back: Value = serde_yaml::from_str(&yaml)?;
        assert_eq!(back["listener"]["address"], Value::from("127.0.0.1:1"));
        assert_eq!(back["listener"]["tls"]["cert"], Value::from("/c.pem"));
        assert_eq!(back["limits"]["max_connections"], Value::from(1));
        assert_eq!(tree.get("limits.max_connections"), Some(&Value::from(1)));
        Ok(())
    }

    #[test]
    fn pushes_onto_lists() -> Result<()> {
        let mut tree = ConfigTree::default();
        tree.push("plugins", "a".into());
        tree.push("plugins", "b".into());
        let back: Value = serde_yaml::from_str(&tree.to_yaml()?)?;
        assert_eq!(
            back["plugins"],
            Value::Sequence(vec!["a".into(), "b".into()])
        );
        assert_eq!(tree.to_value()["plugins"][1], Value::from("b"));
        Ok(())
    }
}
