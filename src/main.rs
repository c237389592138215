//! The `buzzer` binary: parsing and dispatch live in `buzzer-cli`.

fn main() -> std::process::ExitCode {
    buzzer_cli::main()
}
