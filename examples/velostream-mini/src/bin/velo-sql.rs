//! velo-sql: run one streaming SQL statement (mini edition: parse and explain it).
use velostream::{opt, parse_select, standard_cli};

const USAGE: &str = "Usage: velo-sql [--query <SQL>] [--explain]\n\nOptions:\n  --query <SQL>  statement to run\n  --explain      print the parsed plan only\n  -V, --version  print version\n  -h, --help     print this help";

fn main() {
    let opts = standard_cli("velo-sql", USAGE, &["--explain"], &["--query"]);
    let sql = opt(&opts, "--query").unwrap_or("SELECT * FROM stdin");
    match parse_select(sql) {
        Ok(q) => println!(
            "plan: scan({}) -> filter({}) -> project({})",
            q.source,
            q.filter.as_deref().unwrap_or("true"),
            q.projection.join(", ")
        ),
        Err(e) => {
            eprintln!("velo-sql: parse error: {}", e);
            std::process::exit(1);
        }
    }
}
