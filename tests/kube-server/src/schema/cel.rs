//! `x-kubernetes-validations`: CEL rules evaluated on every non-null value whose schema has
//! them, with `self` bound to the value and, on update, `oldSelf` to its correlated old value.
//! Transition rules (those using `oldSelf`) are skipped where there is no old value, unless
//! `optionalOldSelf` is set; errors of other rules on unchanged values are ratcheted away.

mod convert;
mod library;
mod quantity;
mod rule;

use std::sync::Arc;

use cel::{Context, Env, Program, Value as Cel};
use serde_json::{Map, Value};

use super::error::{Bad, FieldError};
use super::node::{Schema, TYPE_AND_OBJECT_META, correlated_item, sorted_keys};
use super::path::Path;
use rule::Rule;

pub(crate) use rule::normalize_field_path;

/// Evaluates every rule in `root` against `obj` (and `old`, on update).
pub(crate) fn validate(root: Schema<'_>, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let env = match library::env() {
        Ok(env) => Arc::new(env),
        Err(e) => {
            let detail = format!("rule compiler initialization error: {e}");
            return vec![FieldError::invalid(
                "<nil>".to_owned(),
                &Bad::text("object"),
                &detail,
            )];
        }
    };
    let mut walker = Walker {
        env,
        errors: Vec::new(),
    };
    walker.node(root, obj, old, &Path::root(), true);
    walker.errors
}

struct Walker {
    env: Arc<Env>,
    errors: Vec<FieldError>,
}

/// The value a node's rules see, with its old value on update.
struct Node<'v> {
    value: &'v Value,
    old: Option<&'v Value>,
    this: Cel,
    old_this: Option<Cel>,
}

impl Walker {
    fn node(&mut self, s: Schema<'_>, v: &Value, old: Option<&Value>, path: &Path, resource: bool) {
        if v.is_null() {
            return;
        }
        if !s.validations().is_empty() {
            let node = Node {
                value: v,
                old,
                this: convert::to_cel(v, Some(s), resource),
                old_this: old.map(|o| convert::to_cel(o, Some(s), resource)),
            };
            for entry in s.validations() {
                if let Some(error) = self.rule(s, &Rule::parse(entry), &node, path) {
                    self.errors.push(error);
                }
            }
        }
        match v {
            Value::Object(map) => self.fields(s, map, old, path, resource),
            Value::Array(items) => self.items(s, items, old, path),
            _ => {}
        }
    }

    /// The fields of an object the schema knows; a resource's type and object meta only
    /// when the schema declares them.
    fn fields(
        &mut self,
        s: Schema<'_>,
        map: &Map<String, Value>,
        old: Option<&Value>,
        path: &Path,
        resource: bool,
    ) {
        for key in sorted_keys(map) {
            let meta = resource && TYPE_AND_OBJECT_META.contains(&key.as_str());
            let old_value = old.and_then(|o| o.get(&key));
            if let Some(prop) = s.property(&key) {
                let embedded = prop.embedded_resource();
                self.node(prop, &map[&key], old_value, &path.child(&key), embedded);
            } else if let Some(values) = s.additional().filter(|_| !meta) {
                let embedded = values.embedded_resource();
                self.node(values, &map[&key], old_value, &path.key(&key), embedded);
            }
        }
    }

    /// The items of a list, each with its old item when the list is a map list.
    fn items(&mut self, s: Schema<'_>, items: &[Value], old: Option<&Value>, path: &Path) {
        let Some(item_schema) = s.items() else {
            return;
        };
        for (i, item) in items.iter().enumerate() {
            let old_item = correlated_item(s, item, old);
            let embedded = item_schema.embedded_resource();
            self.node(item_schema, item, old_item, &path.index(i), embedded);
        }
    }

    fn context(
        &self,
        node: &Node<'_>,
        rule: &Rule<'_>,
    ) -> Result<Context<'static, 'static>, String> {
        let mut ctx = Context::with_env(Arc::clone(&self.env));
        library::add_functions(&mut ctx).map_err(|e| e.to_string())?;
        ctx.add_variable_from_value("self", node.this.clone());
        if rule.optional_old_self {
            let old = library::optional(&self.env, node.old_this.clone())?;
            ctx.add_variable_from_value("oldSelf", old);
        } else if let Some(old) = &node.old_this {
            ctx.add_variable_from_value("oldSelf", old.clone());
        }
        Ok(ctx)
    }

    /// The error `rule` reports for `node`, if any.
    fn rule(
        &self,
        s: Schema<'_>,
        rule: &Rule<'_>,
        node: &Node<'_>,
        path: &Path,
    ) -> Option<FieldError> {
        if rule.rule.is_empty() {
            return None;
        }
        let type_value = Bad::text(s.type_name());
        let program = match self.env.compile(rule.rule) {
            Ok(program) => program,
            Err(e) => {
                let detail = format!("rule compile error: {e}");
                return Some(FieldError::invalid(path.field(), &type_value, &detail));
            }
        };
        let uses_old_self = program.references().has_variable("oldSelf");
        if uses_old_self && node.old.is_none() && !rule.optional_old_self {
            return None;
        }
        let ctx = match self.context(node, rule) {
            Ok(ctx) => ctx,
            Err(e) => {
                let detail = format!("rule compiler initialization error: {e}");
                return Some(FieldError::invalid(path.field(), &type_value, &detail));
            }
        };
        let failed = match program.execute(&ctx) {
            Ok(Cel::Bool(true)) => return None,
            Ok(_) => self.failure(s, rule, node, &ctx, path),
            Err(e) => FieldError::invalid(path.field(), &type_value, &rule.evaluation_error(&e)),
        };
        let ratcheted = !uses_old_self && node.old == Some(node.value);
        (!ratcheted).then_some(failed)
    }

    /// The error for a rule that evaluated to false.
    fn failure(
        &self,
        s: Schema<'_>,
        rule: &Rule<'_>,
        node: &Node<'_>,
        ctx: &Context<'_, '_>,
        path: &Path,
    ) -> FieldError {
        let at = match rule.field_path.and_then(normalize_field_path) {
            Some(relative) => path.child(&relative),
            None => path.clone(),
        };
        let detail = rule
            .message_expression
            .and_then(|source| self.message(source, ctx))
            .unwrap_or_else(|| rule.message_or_default());
        let bad = match s.type_name() {
            "object" | "array" => Bad::Omit,
            _ => Bad::of(node.value),
        };
        match rule.reason {
            Some("FieldValueForbidden") => FieldError::forbidden(at.field(), &detail),
            Some("FieldValueRequired") => FieldError::required(at.field(), &detail),
            Some("FieldValueDuplicate") => FieldError::duplicate(at.field(), &bad),
            _ => FieldError::invalid(at.field(), &bad, &detail),
        }
    }

    /// The message a `messageExpression` evaluates to, if it is a usable one.
    fn message(&self, source: &str, ctx: &Context<'_, '_>) -> Option<String> {
        let program: Program = self.env.compile(source).ok()?;
        match program.execute(ctx) {
            Ok(Cel::String(text)) => {
                let trimmed = text.trim();
                let usable =
                    !trimmed.is_empty() && !trimmed.contains('\n') && trimmed.len() <= 5000;
                usable.then(|| trimmed.to_owned())
            }
            _ => None,
        }
    }
}
