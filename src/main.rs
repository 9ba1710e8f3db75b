//! The `graft` binary: a thin layer over the library (see `graft --help`).

use clap::Parser;

// mimalloc reuses freed blocks across the encoder's many short-lived tensors;
// the system allocator returns them to the kernel and page-faults them back
// (measured ≈ 40 % of a MiniLM pass at 128 tokens, docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    graft::runtime::keep_freed_memory();
    let cli = graft::cli::Cli::parse();
    std::process::exit(graft::cli::run(cli));
}
