//! The `graft` binary: a thin layer over the library (see `graft --help`).

use clap::Parser;

fn main() {
    let cli = graft::cli::Cli::parse();
    std::process::exit(graft::cli::run(cli));
}
