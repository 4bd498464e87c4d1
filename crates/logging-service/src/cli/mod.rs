//! The command lines of `logd` and `logc`, in the library so that the binaries parse them and
//! `cargo xtask dist` generates their man pages and shell completions from the same
//! definitions.

use clap::CommandFactory;

pub mod logc;
pub mod logd;

/// `logd`'s clap command, as its binary parses it.
pub fn logd_command() -> clap::Command {
    logd::Cli::command()
}

/// `logc`'s clap command, as its binary parses it.
pub fn logc_command() -> clap::Command {
    logc::Cli::command()
}
