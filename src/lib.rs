//! forgelet: a small self-hosted git forge served as FastCGI (or CGI) behind nginx or Apache.
//! The library holds every module; the binary (`main.rs`) only calls [`cli::run`]. See
//! `ARCHITECTURE.md` for the layers and what each may use.

pub mod accounts;
pub mod app;
pub mod assets;
pub mod auth;
pub mod cgi;
pub mod cli;
pub mod config;
pub mod downloads;
pub mod error;
pub mod fcgi;
pub mod forms;
pub mod fsfile;
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod git;
pub mod git_http;
pub mod gitrun;
pub mod keyed;
pub mod lfs;
pub mod log_limit;
pub mod markup;
pub mod packcache;
pub mod pages;
pub mod repos;
pub mod request;
pub mod response;
pub mod routes;
pub mod site;
pub mod ssh;
pub mod time;
pub mod urls;
