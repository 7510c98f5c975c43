//! forgelet: a small self-hosted git forge served as FastCGI (or CGI) behind nginx or Apache.
//! Everything is in the library; see `cli::run`.

fn main() {
    std::process::exit(forgelet::cli::run());
}
