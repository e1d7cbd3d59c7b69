//! velo-sql-batch: run a .sql file of statements in batch mode.
use velostream::{opt, parse_select, standard_cli};

const USAGE: &str = "Usage: velo-sql-batch --file <FILE.sql>\n\nOptions:\n  --file <FILE>  SQL file, statements separated by ';'\n  -V, --version  print version\n  -h, --help     print this help";

fn main() {
    let opts = standard_cli("velo-sql-batch", USAGE, &[], &["--file"]);
    let path = match opt(&opts, "--file") {
        Some(p) => p,
        None => {
            eprintln!("velo-sql-batch: error: --file is required\n{}", USAGE);
            std::process::exit(2);
        }
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("velo-sql-batch: cannot read {}: {}", path, e);
            std::process::exit(1);
        }
    };
    let mut failed = 0;
    for stmt in text.split(';').filter(|s| {
        s.lines()
            .any(|l| !l.trim().is_empty() && !l.trim().starts_with("--"))
    }) {
        match parse_select(stmt) {
            Ok(q) => println!("ok: {}", q),
            Err(e) => {
                failed += 1;
                eprintln!("error: {}", e);
            }
        }
    }
    if failed > 0 {
        std::process::exit(1);
    }
}
