//! velo-config-validator: check that config files are well-formed.
use velostream::{opt, standard_cli, validate_config};

const USAGE: &str = "Usage: velo-config-validator --config <FILE>\n\nOptions:\n  --config <FILE>  YAML or TOML config to validate\n  -V, --version    print version\n  -h, --help       print this help";

fn main() {
    let opts = standard_cli("velo-config-validator", USAGE, &[], &["--config"]);
    let path = match opt(&opts, "--config") {
        Some(p) => p,
        None => {
            eprintln!(
                "velo-config-validator: error: --config is required\n{}",
                USAGE
            );
            std::process::exit(2);
        }
    };
    let result = std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|t| validate_config(&t));
    match result {
        Ok(n) => println!("{}: ok ({} keys)", path, n),
        Err(e) => {
            eprintln!("{}: invalid: {}", path, e);
            std::process::exit(1);
        }
    }
}
