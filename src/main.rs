fn main() -> std::process::ExitCode {
    ovsnet::cli::main()
}
