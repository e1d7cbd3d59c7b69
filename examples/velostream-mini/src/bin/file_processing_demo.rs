//! file_processing_demo: aggregate demo/1brc/measurements.txt.
use velostream::{aggregate_measurements, format_stats, standard_cli};

const INPUT: &str = "demo/1brc/measurements.txt";
const USAGE: &str = "Usage: file_processing_demo\n\nProcesses demo/1brc/measurements.txt (relative to cwd).\n\nOptions:\n  -V, --version  print version\n  -h, --help     print this help";

fn main() {
    standard_cli("file_processing_demo", USAGE, &[], &[]);
    let text = match std::fs::read_to_string(INPUT) {
        Ok(t) => t,
        Err(_) => {
            println!(
                "file_processing_demo: {} not found; run from the release folder to see the demo",
                INPUT
            );
            return;
        }
    };
    match aggregate_measurements(&text) {
        Ok(m) => println!("processed {} stations: {}", m.len(), format_stats(&m)),
        Err(e) => {
            eprintln!("file_processing_demo: {}", e);
            std::process::exit(1);
        }
    }
}
