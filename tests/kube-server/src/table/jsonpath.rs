//! The JSONPath subset of printer columns (`.status.replicas`, `.spec.ports[0].port`,
//! `.items[*].name`, `.conditions[?(@.type=="Ready")].status`, `['app.kubernetes.io/name']`),
//! evaluated like client-go's jsonpath with missing keys allowed.

use serde_json::Value;

/// One step of a path.
#[derive(Clone, Debug, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    Slice(Option<i64>, Option<i64>),
    Wildcard,
    Filter(Box<Filter>),
}

#[derive(Clone, Debug, PartialEq)]
struct Filter {
    left: Vec<Step>,
    test: Option<(Op, Operand)>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Debug, PartialEq)]
enum Operand {
    Literal(Value),
    Path(Vec<Step>),
}

/// A parsed path.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct JsonPath(Vec<Step>);

impl JsonPath {
    /// Parses a column's `jsonPath`, with or without the surrounding `{}`.
    pub(crate) fn parse(source: &str) -> Result<Self, String> {
        let trimmed = source.trim();
        let inner = trimmed
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .unwrap_or(trimmed);
        let inner = inner.strip_prefix('$').unwrap_or(inner);
        let (steps, rest) = parse_steps(inner)?;
        if !rest.trim().is_empty() {
            return Err(format!("unexpected {rest:?} in {source:?}"));
        }
        Ok(JsonPath(steps))
    }

    /// Every value the path reaches in `root`, in document order.
    pub(crate) fn find<'v>(&self, root: &'v Value) -> Vec<&'v Value> {
        eval(&self.0, root)
    }
}

fn parse_steps(mut s: &str) -> Result<(Vec<Step>, &str), String> {
    let mut steps = Vec::new();
    loop {
        if let Some(rest) = s.strip_prefix(".*") {
            steps.push(Step::Wildcard);
            s = rest;
        } else if let Some(rest) = s.strip_prefix('.') {
            let end = rest
                .find(['.', '[', ' ', ')', '=', '!', '<', '>'])
                .unwrap_or(rest.len());
            if end == 0 {
                return Err(format!("empty field name at {s:?}"));
            }
            steps.push(Step::Field(rest[..end].to_owned()));
            s = &rest[end..];
        } else if let Some(rest) = s.strip_prefix('[') {
            let (step, after) = parse_bracket(rest)?;
            steps.push(step);
            s = after;
        } else {
            return Ok((steps, s));
        }
    }
}

fn parse_bracket(s: &str) -> Result<(Step, &str), String> {
    if let Some(rest) = s.strip_prefix("?(") {
        let (filter, after) = parse_filter(rest)?;
        let after = after.strip_prefix(")]").ok_or("unterminated filter")?;
        return Ok((Step::Filter(Box::new(filter)), after));
    }
    if let Some(quote) = s.chars().next().filter(|c| *c == '\'' || *c == '"') {
        let body = &s[1..];
        let end = body.find(quote).ok_or("unterminated quoted name")?;
        let after = body[end + 1..].strip_prefix(']').ok_or("expected ]")?;
        return Ok((Step::Field(body[..end].to_owned()), after));
    }
    let end = s.find(']').ok_or("expected ]")?;
    let (inside, after) = (s[..end].trim(), &s[end + 1..]);
    let number = |t: &str| -> Result<Option<i64>, String> {
        let t = t.trim();
        if t.is_empty() {
            return Ok(None);
        }
        t.parse()
            .map(Some)
            .map_err(|_| format!("invalid array index {t:?}"))
    };
    let step = match inside.split_once(':') {
        _ if inside == "*" => Step::Wildcard,
        Some((start, stop)) => Step::Slice(
            number(start)?,
            number(stop.split(':').next().unwrap_or(""))?,
        ),
        None => Step::Index(number(inside)?.ok_or("empty array index")?),
    };
    Ok((step, after))
}

fn parse_filter(s: &str) -> Result<(Filter, &str), String> {
    let rest = s
        .trim_start()
        .strip_prefix('@')
        .ok_or("filter must start with @")?;
    let (left, rest) = parse_steps(rest)?;
    let rest = rest.trim_start();
    let ops = [
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];
    let Some((op, rest)) = ops
        .iter()
        .find_map(|(t, op)| rest.strip_prefix(t).map(|r| (*op, r)))
    else {
        return Ok((Filter { left, test: None }, rest));
    };
    let (operand, rest) = parse_operand(rest.trim_start())?;
    Ok((
        Filter {
            left,
            test: Some((op, operand)),
        },
        rest.trim_start(),
    ))
}

fn parse_operand(s: &str) -> Result<(Operand, &str), String> {
    if let Some(rest) = s.strip_prefix('@') {
        let (steps, rest) = parse_steps(rest)?;
        return Ok((Operand::Path(steps), rest));
    }
    if let Some(quote) = s.chars().next().filter(|c| *c == '\'' || *c == '"') {
        let body = &s[1..];
        let end = body.find(quote).ok_or("unterminated string in filter")?;
        return Ok((
            Operand::Literal(Value::String(body[..end].to_owned())),
            &body[end + 1..],
        ));
    }
    let end = s.find([')', ' ']).unwrap_or(s.len());
    let token = &s[..end];
    let literal = match token {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => serde_json::from_str::<Value>(token)
            .ok()
            .filter(Value::is_number)
            .ok_or_else(|| format!("unsupported filter operand {token:?}"))?,
    };
    Ok((Operand::Literal(literal), &s[end..]))
}

fn eval<'v>(steps: &[Step], root: &'v Value) -> Vec<&'v Value> {
    let mut current = vec![root];
    for step in steps {
        current = current.into_iter().flat_map(|v| apply(step, v)).collect();
    }
    current
}

fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let i = if index < 0 { len + index } else { index };
    usize::try_from(i).ok().filter(|i| (*i as i64) < len)
}

fn apply<'v>(step: &Step, value: &'v Value) -> Vec<&'v Value> {
    match (step, value) {
        (Step::Field(name), Value::Object(map)) => map.get(name).into_iter().collect(),
        (Step::Index(i), Value::Array(items)) => resolve_index(*i, items.len())
            .map(|i| &items[i])
            .into_iter()
            .collect(),
        (Step::Slice(start, stop), Value::Array(items)) => {
            let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
            let clamp = |i: i64| {
                usize::try_from(if i < 0 { (len + i).max(0) } else { i.min(len) }).unwrap_or(0)
            };
            let (from, to) = (clamp(start.unwrap_or(0)), clamp(stop.unwrap_or(len)));
            items
                .get(from..to.max(from))
                .map(|s| s.iter().collect())
                .unwrap_or_default()
        }
        (Step::Wildcard, Value::Array(items)) => items.iter().collect(),
        (Step::Wildcard, Value::Object(map)) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            keys.into_iter().map(|k| &map[k.as_str()]).collect()
        }
        (Step::Filter(filter), Value::Array(items)) => {
            items.iter().filter(|item| passes(filter, item)).collect()
        }
        _ => Vec::new(),
    }
}

fn passes(filter: &Filter, item: &Value) -> bool {
    let lefts = eval(&filter.left, item);
    let Some(left) = lefts.first() else {
        return false;
    };
    let Some((op, operand)) = &filter.test else {
        return true;
    };
    let right = match operand {
        Operand::Literal(v) => v,
        Operand::Path(steps) => match eval(steps, item).first() {
            Some(v) => *v,
            None => return false,
        },
    };
    compare(left, *op, right)
}

fn compare(left: &Value, op: Op, right: &Value) -> bool {
    let ordering = match (left, right) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().partial_cmp(&b.as_f64()),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) if matches!(op, Op::Eq | Op::Ne) => Some(a.cmp(b)),
        _ => None,
    };
    let Some(ordering) = ordering else {
        return false;
    };
    match op {
        Op::Eq => ordering.is_eq(),
        Op::Ne => ordering.is_ne(),
        Op::Lt => ordering.is_lt(),
        Op::Le => ordering.is_le(),
        Op::Gt => ordering.is_gt(),
        Op::Ge => ordering.is_ge(),
    }
}
