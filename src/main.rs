//! The `vaultkeeper` binary: everything it does starts in the CLI.

fn main() -> std::process::ExitCode {
    vaultkeeper::cli::main()
}
