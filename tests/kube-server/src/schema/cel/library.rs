//! The CEL environment rules run in: the standard library, the strings and lists extensions,
//! and from the Kubernetes libraries the list functions `isSorted`, `sum`, `min`, `max` and the
//! regex functions `find`, `findAll`, and the quantity library (see [`quantity`]).

use std::sync::Arc;

use cel::extractors::{Arguments, This};
use cel::{Context, DeclarationError, Env, ExecutionError, Value, extensions};

use super::quantity;

/// The environment rules are compiled in.
pub(crate) fn env() -> Result<Env, DeclarationError> {
    let mut env = Env::stdlib();
    env.add_extension(extensions::strings)?;
    env.add_extension(extensions::lists)?;
    Ok(env)
}

/// Adds the Kubernetes library functions the environment lacks to a rule's context.
pub(crate) fn add_functions(ctx: &mut Context<'_, '_>) -> Result<(), DeclarationError> {
    ctx.add_function("isSorted", is_sorted)?;
    ctx.add_function("sum", sum)?;
    ctx.add_function("min", min)?;
    ctx.add_function("max", max)?;
    ctx.add_function("find", find)?;
    ctx.add_function("findAll", find_all)?;
    ctx.add_function("quantity", quantity::quantity)?;
    ctx.add_function("isQuantity", quantity::is_quantity)?;
    ctx.add_function("compareTo", quantity::compare_to)?;
    ctx.add_function("isGreaterThan", quantity::is_greater_than)?;
    ctx.add_function("isLessThan", quantity::is_less_than)?;
    ctx.add_function("asInteger", quantity::as_integer)?;
    Ok(())
}

/// `optional.of(value)`, or `optional.none()`, for `oldSelf` of rules with `optionalOldSelf`.
pub(crate) fn optional(env: &Arc<Env>, value: Option<Value>) -> Result<Value, String> {
    let mut ctx = Context::with_env(Arc::clone(env));
    let source = match value {
        Some(v) => {
            ctx.add_variable_from_value("value", v);
            "optional.of(value)"
        }
        None => "optional.none()",
    };
    let program = env.compile(source).map_err(|e| e.to_string())?;
    program.execute(&ctx).map_err(|e| e.to_string())
}

fn is_sorted(This(list): This<Arc<Vec<Value>>>) -> Result<bool, ExecutionError> {
    for pair in list.windows(2) {
        match pair[0].partial_cmp(&pair[1]) {
            Some(std::cmp::Ordering::Greater) => return Ok(false),
            Some(_) => {}
            None => {
                return Err(ExecutionError::ValuesNotComparable(
                    pair[0].clone(),
                    pair[1].clone(),
                ));
            }
        }
    }
    Ok(true)
}

fn sum(This(list): This<Arc<Vec<Value>>>) -> Result<Value, ExecutionError> {
    let mut total = match list.first() {
        Some(Value::Float(_)) => Value::Float(0.0),
        Some(Value::UInt(_)) => Value::UInt(0),
        _ => Value::Int(0),
    };
    for item in list.iter() {
        total = match (&total, item) {
            (Value::Int(a), Value::Int(b)) => a
                .checked_add(*b)
                .map(Value::Int)
                .ok_or_else(|| ExecutionError::function_error("sum", "integer overflow"))?,
            (Value::UInt(a), Value::UInt(b)) => a
                .checked_add(*b)
                .map(Value::UInt)
                .ok_or_else(|| ExecutionError::function_error("sum", "integer overflow"))?,
            (Value::Float(a), Value::Float(b)) => Value::Float(a + b),
            _ => return Err(ExecutionError::function_error("sum", "no such overload")),
        };
    }
    Ok(total)
}

fn extreme(
    name: &str,
    list: &[Value],
    wanted: std::cmp::Ordering,
) -> Result<Value, ExecutionError> {
    let mut items = list.iter();
    let Some(mut best) = items.next() else {
        return Err(ExecutionError::function_error(
            name,
            format!("{name} called on empty list"),
        ));
    };
    for item in items {
        match item.partial_cmp(best) {
            Some(order) if order == wanted => best = item,
            Some(_) => {}
            None => {
                return Err(ExecutionError::ValuesNotComparable(
                    best.clone(),
                    item.clone(),
                ));
            }
        }
    }
    Ok(best.clone())
}

fn min(This(list): This<Arc<Vec<Value>>>) -> Result<Value, ExecutionError> {
    extreme("min", &list, std::cmp::Ordering::Less)
}

fn max(This(list): This<Arc<Vec<Value>>>) -> Result<Value, ExecutionError> {
    extreme("max", &list, std::cmp::Ordering::Greater)
}

fn regex(function: &str, pattern: &str) -> Result<regex::Regex, ExecutionError> {
    regex::Regex::new(pattern).map_err(|e| ExecutionError::function_error(function, e))
}

fn find(This(text): This<Arc<String>>, pattern: Arc<String>) -> Result<Value, ExecutionError> {
    let pattern = Arc::unwrap_or_clone(pattern);
    let re = regex("find", &pattern)?;
    let found = re.find(&text).map(|m| m.as_str()).unwrap_or("");
    Ok(Value::String(Arc::new(found.to_owned())))
}

fn find_all(
    This(text): This<Arc<String>>,
    Arguments(args): Arguments,
) -> Result<Value, ExecutionError> {
    let (pattern, limit) = match args.as_slice() {
        [Value::String(p)] => (p.clone(), -1),
        [Value::String(p), Value::Int(n)] => (p.clone(), *n),
        _ => {
            return Err(ExecutionError::function_error(
                "findAll",
                "no such overload",
            ));
        }
    };
    let re = regex("findAll", &pattern)?;
    let take = usize::try_from(limit).unwrap_or(usize::MAX);
    let found = re
        .find_iter(&text)
        .take(take)
        .map(|m| Value::String(Arc::new(m.as_str().to_owned())))
        .collect();
    Ok(Value::List(Arc::new(found)))
}
