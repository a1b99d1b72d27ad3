//! Thin main: parse, run, map the result to an exit code.
fn main() {
    std::process::exit(xc_convert::cli::main());
}
