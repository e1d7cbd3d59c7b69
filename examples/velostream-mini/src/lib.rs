//! Velostream (mini): a tiny, dependency-free stand-in for a streaming SQL
//! engine. It only exists so a release farm has a realistic project to
//! build: several binaries, shared library code, demo files and configs.
//!
//! Keep this compatible with Rust 1.63 (Debian's rustc).

use std::collections::BTreeMap;
use std::fmt;

/// Package version, taken from Cargo.toml at build time.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `<binary-name> <version>`, the line every binary prints for `--version`.
pub fn version_line(bin: &str) -> String {
    format!("{} {}", bin, VERSION)
}

/// Outcome of looking at the command line of a simple binary.
#[derive(Debug, PartialEq, Eq)]
pub enum Cli {
    /// Normal run with the remaining (accepted) options.
    Run(Vec<(String, Option<String>)>),
    /// `--version` / `-V` was given and handled.
    Version,
    /// `--help` / `-h` was given and handled.
    Help,
}

/// Error for anything the binary does not understand.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parse `args` (without argv[0]). `flags` lists accepted options that take
/// no value, `valued` lists accepted options that take one value.
pub fn parse_args(args: &[String], flags: &[&str], valued: &[&str]) -> Result<Cli, UsageError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        match a {
            "--version" | "-V" => return Ok(Cli::Version),
            "--help" | "-h" => return Ok(Cli::Help),
            _ if flags.contains(&a) => out.push((a.to_string(), None)),
            _ if valued.contains(&a) => {
                i += 1;
                match args.get(i) {
                    Some(v) => out.push((a.to_string(), Some(v.clone()))),
                    None => return Err(UsageError(format!("option '{}' needs a value", a))),
                }
            }
            _ => return Err(UsageError(format!("unexpected argument '{}'", a))),
        }
        i += 1;
    }
    Ok(Cli::Run(out))
}

/// Shared `main` plumbing: handles --version/--help/unknown arguments and
/// returns the accepted options, or exits the process.
pub fn standard_cli(
    bin: &str,
    usage: &str,
    flags: &[&str],
    valued: &[&str],
) -> Vec<(String, Option<String>)> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse_args(&args, flags, valued) {
        Ok(Cli::Run(opts)) => opts,
        Ok(Cli::Version) => {
            println!("{}", version_line(bin));
            std::process::exit(0);
        }
        Ok(Cli::Help) => {
            println!("{}\n{}", version_line(bin), usage);
            std::process::exit(0);
        }
        Err(e) => {
            eprintln!("{}: error: {}", bin, e);
            eprintln!("{}", usage);
            std::process::exit(2);
        }
    }
}

/// Look up the value of a valued option.
pub fn opt<'a>(opts: &'a [(String, Option<String>)], name: &str) -> Option<&'a str> {
    opts.iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.as_deref())
}

/// A parsed `SELECT <cols> FROM <source> [WHERE <expr>]` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub projection: Vec<String>,
    pub source: String,
    pub filter: Option<String>,
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SELECT {} FROM {}",
            self.projection.join(", "),
            self.source
        )?;
        if let Some(w) = &self.filter {
            write!(f, " WHERE {}", w)?;
        }
        Ok(())
    }
}

/// Parse a very small SQL-ish dialect. Keywords are case-insensitive,
/// a trailing `;` is ignored, `--` comments are stripped.
pub fn parse_select(sql: &str) -> Result<Query, String> {
    let cleaned: String = sql
        .lines()
        .map(|l| match l.find("--") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join(" ");
    let s = cleaned.trim().trim_end_matches(';').trim();
    let upper = s.to_ascii_uppercase();
    if !upper.starts_with("SELECT ") {
        return Err("expected SELECT".to_string());
    }
    let from = upper
        .find(" FROM ")
        .ok_or_else(|| "expected FROM".to_string())?;
    let projection: Vec<String> = s[7..from]
        .split(',')
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    if projection.is_empty() {
        return Err("empty projection".to_string());
    }
    let rest = &s[from + 6..];
    let rest_upper = &upper[from + 6..];
    let (source, filter) = match rest_upper.find(" WHERE ") {
        Some(w) => (rest[..w].trim(), Some(rest[w + 7..].trim().to_string())),
        None => (rest.trim(), None),
    };
    if source.is_empty() || source.contains(' ') {
        return Err(format!("bad source '{}'", source));
    }
    Ok(Query {
        projection,
        source: source.to_string(),
        filter,
    })
}

/// min / mean / max of one station.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub count: u64,
}

impl Stats {
    pub fn mean(&self) -> f64 {
        self.sum / self.count as f64
    }
}

/// Aggregate `station;temperature` lines (the One Billion Row Challenge
/// format). Blank lines and `#` comments are skipped; bad lines are errors.
pub fn aggregate_measurements(text: &str) -> Result<BTreeMap<String, Stats>, String> {
    let mut map: BTreeMap<String, Stats> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line
            .split_once(';')
            .ok_or_else(|| format!("line {}: expected 'station;value'", n + 1))?;
        let v: f64 = value
            .trim()
            .parse()
            .map_err(|_| format!("line {}: bad number '{}'", n + 1, value))?;
        let e = map.entry(name.to_string()).or_insert(Stats {
            min: v,
            max: v,
            sum: 0.0,
            count: 0,
        });
        e.min = e.min.min(v);
        e.max = e.max.max(v);
        e.sum += v;
        e.count += 1;
    }
    Ok(map)
}

/// Format results like the 1BRC reference: `{a=min/mean/max, b=...}`.
pub fn format_stats(map: &BTreeMap<String, Stats>) -> String {
    let parts: Vec<String> = map
        .iter()
        .map(|(k, s)| format!("{}={:.1}/{:.1}/{:.1}", k, s.min, s.mean(), s.max))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// Minimal config check: `key: value` (YAML) or `key = value` (TOML) lines,
/// comments and section headers allowed. Returns the number of keys.
pub fn validate_config(text: &str) -> Result<usize, String> {
    let mut keys = 0;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line == "---" || line.starts_with("- ") {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            continue;
        }
        if raw.contains('\t') {
            return Err(format!("line {}: tab character", n + 1));
        }
        if line.contains(": ") || line.ends_with(':') || line.contains(" = ") {
            keys += 1;
        } else {
            return Err(format!("line {}: cannot parse '{}'", n + 1, line));
        }
    }
    if keys == 0 {
        return Err("no keys found".to_string());
    }
    Ok(keys)
}

/// The JSON schema `velo-schema-generator` writes (deterministic output).
pub fn config_schema_json() -> String {
    let mut s = String::new();
    s.push_str("{\n");
    s.push_str("  \"$schema\": \"https://json-schema.org/draft/2020-12/schema\",\n");
    s.push_str(&format!(
        "  \"title\": \"velostream config {}\",\n",
        VERSION
    ));
    s.push_str("  \"type\": \"object\",\n");
    s.push_str("  \"properties\": {\n");
    let props = [
        ("name", "string"),
        ("source", "object"),
        ("sink", "object"),
        ("query", "string"),
        ("batch_size", "integer"),
    ];
    for (i, (k, t)) in props.iter().enumerate() {
        let comma = if i + 1 < props.len() { "," } else { "" };
        s.push_str(&format!(
            "    \"{}\": {{ \"type\": \"{}\" }}{}\n",
            k, t, comma
        ));
    }
    s.push_str("  },\n  \"required\": [\"name\", \"query\"]\n}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_select() {
        let q = parse_select("select id, amount FROM orders where amount > 10;").unwrap();
        assert_eq!(q.projection, vec!["id", "amount"]);
        assert_eq!(q.source, "orders");
        assert_eq!(q.filter.as_deref(), Some("amount > 10"));
        assert!(parse_select("DELETE FROM x").is_err());
    }

    #[test]
    fn aggregates() {
        let m = aggregate_measurements("a;1.0\nb;2.0\na;3.0\n").unwrap();
        assert_eq!(format_stats(&m), "{a=1.0/2.0/3.0, b=2.0/2.0/2.0}");
    }

    #[test]
    fn args() {
        let a = vec!["--bogus".to_string()];
        assert!(parse_args(&a, &[], &[]).is_err());
        let a = vec!["--version".to_string()];
        assert_eq!(parse_args(&a, &[], &[]), Ok(Cli::Version));
    }
}
