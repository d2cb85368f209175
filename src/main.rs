//! The `vaultkeeper` binary: parse the command line, run, map errors to an exit code.

fn main() -> std::process::ExitCode {
    // The same binary is the rule supervisor (see `rules::supervise`).
    if let Some(code) = vaultkeeper::rules::supervise::run_if_asked() {
        return code;
    }
    #[cfg(target_os = "linux")]
    vaultkeeper::rules::supervise::enable("/proc/self/exe".into());
    vaultkeeper::cli::main()
}
