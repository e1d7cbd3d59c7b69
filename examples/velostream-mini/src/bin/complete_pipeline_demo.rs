//! complete_pipeline_demo: source -> SQL -> sink, using demo/datasource-demo.
use velostream::{parse_select, standard_cli};

const SQL: &str = "demo/datasource-demo/enriched_orders.sql";
const USAGE: &str = "Usage: complete_pipeline_demo\n\nRuns the datasource demo from demo/datasource-demo (relative to cwd).\n\nOptions:\n  -V, --version  print version\n  -h, --help     print this help";

fn main() {
    standard_cli("complete_pipeline_demo", USAGE, &[], &[]);
    let text = match std::fs::read_to_string(SQL) {
        Ok(t) => t,
        Err(_) => {
            println!(
                "complete_pipeline_demo: {} not found; run from the release folder to see the demo",
                SQL
            );
            return;
        }
    };
    match parse_select(&text) {
        Ok(q) => {
            println!("source : {}", q.source);
            println!("query  : {}", q);
            println!("sink   : stdout");
            println!("pipeline demo finished");
        }
        Err(e) => {
            eprintln!("complete_pipeline_demo: {}: {}", SQL, e);
            std::process::exit(1);
        }
    }
}
