//! velo-cli: operator CLI for a Velostream deployment (mini edition).
use velostream::{version_line, VERSION};

const USAGE: &str = "Usage: velo-cli <COMMAND> [ARGS]

Commands:
  status            show server status
  jobs              list running SQL jobs
  deploy <FILE>     deploy a .sql application
  version           print version

Options:
  -V, --version     print version
  -h, --help        print this help";

fn help() {
    println!("{}\n{}", version_line("velo-cli"), USAGE);
}

fn fail(msg: &str) -> ! {
    eprintln!("velo-cli: error: {}\n{}", msg, USAGE);
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = if args.len() > 1 { &args[1..] } else { &[][..] };
    match args.first().map(|s| s.as_str()) {
        None | Some("--help") | Some("-h") | Some("help") => help(),
        Some("--version") | Some("-V") | Some("version") => {
            println!("{}", version_line("velo-cli"))
        }
        Some("status") if rest.is_empty() => println!(
            "velostream {}: no server configured (mini edition)",
            VERSION
        ),
        Some("jobs") if rest.is_empty() => println!("no jobs"),
        Some("deploy") if rest.len() == 1 => {
            let path = &rest[0];
            match std::fs::read_to_string(path)
                .map_err(|e| e.to_string())
                .and_then(|t| velostream::parse_select(&t))
            {
                Ok(q) => println!("would deploy: {}", q),
                Err(e) => {
                    eprintln!("velo-cli: deploy {}: {}", path, e);
                    std::process::exit(1);
                }
            }
        }
        Some(cmd @ ("status" | "jobs" | "deploy")) => {
            fail(&format!("wrong arguments for '{}'", cmd))
        }
        Some(other) => fail(&format!("unknown command '{}'", other)),
    }
}
