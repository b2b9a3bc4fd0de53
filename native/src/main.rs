//! `cairn`: run language models locally. See `cairn --help`.
//!
//! This file only parses and dispatches; the commands live in
//! `native/src/cli/` (one file per command).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    cairn::cli::init_logging();
    cairn::cli::install_panic_hook();
    let cli = cairn::cli::Cli::parse();
    match cairn::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
