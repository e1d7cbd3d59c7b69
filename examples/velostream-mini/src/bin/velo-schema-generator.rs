//! velo-schema-generator: write the config JSON schema to
//! ./schema.generated.json (side effect in the current folder!).
use velostream::{config_schema_json, standard_cli};

const OUTPUT: &str = "schema.generated.json";
const USAGE: &str = "Usage: velo-schema-generator\n\nWrites schema.generated.json into the current directory.\n\nOptions:\n  -V, --version  print version\n  -h, --help     print this help";

fn main() {
    standard_cli("velo-schema-generator", USAGE, &[], &[]);
    if let Err(e) = std::fs::write(OUTPUT, config_schema_json()) {
        eprintln!("velo-schema-generator: cannot write {}: {}", OUTPUT, e);
        std::process::exit(1);
    }
    println!("wrote {}", OUTPUT);
}
