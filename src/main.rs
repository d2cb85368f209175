//! The `vaultkeeper` binary: everything it does starts in the CLI.

fn main() -> std::process::ExitCode {
    vaultkeeper_core::memory::fix_mmap_threshold();
    vaultkeeper::cli::main()
}
