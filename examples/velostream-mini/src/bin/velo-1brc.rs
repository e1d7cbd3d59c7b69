//! velo-1brc: One Billion Row Challenge aggregator (min/mean/max per station).
use velostream::{aggregate_measurements, format_stats, opt, standard_cli};

const USAGE: &str = "Usage: velo-1brc [--input <FILE>]\n\nOptions:\n  --input <FILE>  measurements file (default demo/1brc/measurements.txt)\n  -V, --version   print version\n  -h, --help      print this help";

fn main() {
    let opts = standard_cli("velo-1brc", USAGE, &[], &["--input"]);
    let path = opt(&opts, "--input").unwrap_or("demo/1brc/measurements.txt");
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("velo-1brc: cannot read {}: {}", path, e);
            std::process::exit(1);
        }
    };
    match aggregate_measurements(&text) {
        Ok(m) => println!("{}", format_stats(&m)),
        Err(e) => {
            eprintln!("velo-1brc: {}", e);
            std::process::exit(1);
        }
    }
}
