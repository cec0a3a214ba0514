//! Reading the Prometheus text format the sidecar exposes, and checking it with `promtool`.

use std::{collections::BTreeMap, process::Stdio};

use anyhow::{Context, Result, bail};
use tokio::{io::AsyncWriteExt, process::Command};

/// One sample line: `name{labels} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses the sample lines of `text`, skipping comments.
pub fn parse(text: &str) -> Result<Vec<Sample>> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| parse_line(line).with_context(|| format!("bad sample line {line:?}")))
        .collect()
}

/// The sum of every sample named `name` whose labels include all of `labels`.
pub fn sum(text: &str, name: &str, labels: &[(&str, &str)]) -> Result<f64> {
    let samples = parse(text)?;
    let matching = samples.iter().filter(|s| {
        s.name == name
            && labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
    });
    Ok(matching.map(|s| s.value).sum())
}

/// Whether any sample is named `name`.
pub fn has(text: &str, name: &str) -> Result<bool> {
    Ok(parse(text)?.iter().any(|s| s.name == name))
}

fn parse_line(line: &str) -> Result<Sample> {
    let (series, rest) = match line.find('{') {
        Some(_) => {
            let close = line.rfind('}').context("unclosed label set")?;
            (&line[..close + 1], &line[close + 1..])
        }
        None => line.split_at(line.find(' ').context("no value")?),
    };
    let value = rest.split_whitespace().next().context("no value")?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().context("value is not a number")?,
    };
    let (name, labels) = match series.split_once('{') {
        Some((name, labels)) => (name, parse_labels(labels.trim_end_matches('}'))?),
        None => (series, BTreeMap::new()),
    };
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

fn parse_labels(mut text: &str) -> Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    while !text.is_empty() {
        let (name, rest) = text.split_once("=\"").context("label without =\"")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next().context("unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().context("dangling escape")?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, c) => value.push(c),
            }
        };
        labels.insert(name.trim_start_matches(',').trim().to_owned(), value);
        text = rest[end + 1..].trim_start_matches(',').trim_start();
    }
    Ok(labels)
}

/// Runs `promtool check metrics` on `text`; fails with promtool's findings, or when promtool is
/// not installed (the test command installs Debian's `prometheus` package).
pub async fn promtool_check(text: &str) -> Result<()> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run promtool: install it with `apt-get install prometheus` (cargo xtask test does)")?;
    let mut stdin = child.stdin.take().context("promtool stdin")?;
    stdin.write_all(text.as_bytes()).await?;
    drop(stdin);
    let output = child.wait_with_output().await?;
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() || !findings.trim().is_empty() {
        bail!(
            "promtool check metrics ({}) reported:\n{findings}",
            output.status
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_and_sums() -> Result<()> {
        let text = "# HELP x y\nreq_total{method=\"GET\",code_class=\"2xx\"} 3\n\
                    req_total{method=\"POST\",code_class=\"2xx\"} 4\nup 1\n\
                    h_bucket{le=\"+Inf\",q=\"a\\\"b\"} 2\n";
        assert_eq!(sum(text, "req_total", &[])?, 7.0);
        assert_eq!(sum(text, "req_total", &[("method", "GET")])?, 3.0);
        assert_eq!(sum(text, "up", &[])?, 1.0);
        assert_eq!(sum(text, "h_bucket", &[("q", "a\"b")])?, 2.0);
        Ok(())
    }
}
