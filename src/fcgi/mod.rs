//! Placeholder until the responder lands: just the types the rest of forgelet is written against.
#![allow(dead_code)]
use std::io;
pub struct Params {
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
}
impl Params {
    pub fn from_pairs(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Params {
        Params { pairs }
    }
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.pairs.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))
    }
}
pub trait App: Send + Sync + 'static {
    fn lane(&self, params: &Params) -> usize;
    fn respond(
        &self,
        params: &Params,
        stdin: &mut dyn io::Read,
        stdout: &mut dyn io::Write,
    ) -> io::Result<()>;
}
pub struct LaneConfig {
    pub name: String,
    pub workers: usize,
    pub queue: usize,
}
pub struct Config {
    pub lanes: Vec<LaneConfig>,
    pub max_connections: usize,
    pub io_timeout: std::time::Duration,
    pub idle_timeout: std::time::Duration,
    pub max_params_bytes: usize,
    pub retry_after_secs: u32,
    pub drain_timeout: std::time::Duration,
}
pub enum ListenSpec {
    Unix {
        path: std::path::PathBuf,
        group: Option<String>,
    },
    Tcp(String),
}
impl std::str::FromStr for ListenSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(ListenSpec::Tcp(s.into()))
    }
}
pub struct Listener;
impl Listener {
    pub fn inherited() -> io::Result<Option<Listener>> {
        Ok(None)
    }
    pub fn bind(_spec: &ListenSpec) -> io::Result<Listener> {
        Err(io::Error::other("stub"))
    }
}
pub fn fd0_is_listening_socket() -> bool {
    false
}
pub fn serve(_l: Listener, _c: Config, _a: std::sync::Arc<dyn App>) -> io::Result<()> {
    Err(io::Error::other("stub"))
}
